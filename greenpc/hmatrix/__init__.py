"""H-matrix compression of a kernel G(x, y): cluster trees, block partition, low-rank compressors.

``build(kernel, row_points, col_points, leaf_size=..., eta=..., compressor=...)`` returns an ``HMatrix``
whose near blocks and factors ``greenpc.hmatrix.petsc`` assembles as the PETSc matrices of
y = N x + U (Vt x), or y = N x + U (C (Vt x)) when far blocks share their clusters' bases (Chebyshev);
``to_coo()`` gives N, U and Vt as triplets with each block's own factors. Everything but that module is
PETSc-free.
"""
from .admissibility import Admissibility, box_distance
from .batch import BlockEvaluator
from .cluster import ClusterNode, ClusterTree, paper_leaf_size
from .compress import (ACA, COMPRESSORS, Chebyshev, Compressor, Nystrom, RankRule, make_compressor,
                       paper_base_rank, truncate)
from .hmatrix import (CooPieces, FarBlock, HMatrix, MemoryLimitError, NearBlock, Plan, Storage, Triplets,
                      build, plan, plan_within, sample_ranks)
from .partition import Block, BlockPartition

__all__ = ["ACA", "Admissibility", "Block", "BlockEvaluator", "BlockPartition", "COMPRESSORS", "Chebyshev",
           "ClusterNode", "ClusterTree", "Compressor", "CooPieces", "FarBlock", "HMatrix", "MemoryLimitError", "NearBlock",
           "Nystrom", "Plan", "RankRule", "Storage", "Triplets", "box_distance", "build", "make_compressor",
           "paper_base_rank", "paper_leaf_size", "plan", "plan_within", "sample_ranks", "truncate"]
