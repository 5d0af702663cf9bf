"""The block structure of an H-matrix: which row x column cluster pairs are dense and which low-rank.

Built from geometry alone (a dual-tree recursion over a row tree and a column tree) before any kernel
evaluation, so its size and memory can be judged before paying for the kernel.
"""
from dataclasses import dataclass

import numpy as np

from .cluster import ClusterNode


@dataclass(frozen=True, eq=False)
class Block:
    """The block rows x cols, one cluster of each tree."""

    rows: ClusterNode
    cols: ClusterNode

    @property
    def shape(self):
        return self.rows.size, self.cols.size


class BlockPartition:
    """A partition of row_tree x col_tree into near (dense) and far (admissible, low-rank) blocks.

    Every (row, column) pair lies in exactly one block. A pair is far when ``admissible`` accepts it;
    an inadmissible pair is split into its children pairs (a leaf is kept whole while the other side
    splits), and becomes a near block when both are leaves, or when a leaf meets a larger cluster whose
    split would yield no far block at all (the near field is then one block instead of many slivers).

    Attributes
    ----------
    row_tree, col_tree : ClusterTree
    admissible : callable (ClusterNode, ClusterNode) -> bool
    near, far : list of Block
    """

    def __init__(self, row_tree, col_tree, admissible):
        if row_tree.dim != col_tree.dim:
            raise ValueError(f"row points are {row_tree.dim}D but column points are {col_tree.dim}D")
        self.row_tree, self.col_tree, self.admissible = row_tree, col_tree, admissible
        self.near, self.far = [], []
        if row_tree.root.size and col_tree.root.size:
            self._split(row_tree.root, col_tree.root, self.near, self.far)

    def _split(self, rows, cols, near, far):
        if self.admissible(rows, cols):
            far.append(Block(rows, cols))
        elif rows.is_leaf and cols.is_leaf:
            near.append(Block(rows, cols))
        elif rows.is_leaf or cols.is_leaf:
            pairs = ([(rows, child) for child in cols.children] if rows.is_leaf
                     else [(child, cols) for child in rows.children])
            sub_near, sub_far = [], []
            for pair in pairs:
                self._split(*pair, sub_near, sub_far)
            if sub_far:
                near.extend(sub_near)
                far.extend(sub_far)
            else:
                near.append(Block(rows, cols))
        else:
            for row_child in rows.children:
                for col_child in cols.children:
                    self._split(row_child, col_child, near, far)

    @property
    def shape(self):
        return len(self.row_tree.points), len(self.col_tree.points)

    def indices(self, block):
        """(row indices, column indices) of ``block`` in user numbering."""
        return self.row_tree.indices(block.rows), self.col_tree.indices(block.cols)

    def shapes(self, which):
        """Array (blocks, 2) of the shapes of the ``"near"`` or ``"far"`` blocks."""
        blocks = {"near": self.near, "far": self.far}[which]
        return np.array([block.shape for block in blocks], dtype=np.int64).reshape(-1, 2)

    @property
    def near_entries(self):
        """Entries of the dense near field."""
        return int(np.prod(self.shapes("near"), axis=1).sum())

    def summary(self):
        """Counts and sizes for reports: blocks of each kind, near-field entries, largest far block."""
        far = self.shapes("far")
        return {"near_blocks": len(self.near), "far_blocks": len(self.far),
                "near_entries": self.near_entries,
                "far_entries_dense": int(np.prod(far, axis=1).sum()),
                "largest_far_block": tuple(int(v) for v in far[np.argmax(far.min(axis=1))]) if len(far)
                else (0, 0)}

    def draw(self, path, ranks=None, title=None):
        """Save a picture of the block structure as in the paper's figure 9 (a PNG at ``path``).

        Blocks are drawn in tree numbering, where each is a rectangle: near blocks dark, far blocks
        light, with their rank written inside when ``ranks`` (one per far block) is given and the block
        is large enough to hold the label.
        """
        # an Agg canvas of our own: no pyplot, so a user's interactive backend is left alone
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import PatchCollection
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        m, n = self.shape
        fig = Figure(figsize=(6.0, max(1.0, 6.0 * m / max(n, 1))))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for blocks, color in ((self.near, "#c0392b"), (self.far, "#d6eaf8")):
            ax.add_collection(PatchCollection(
                [Rectangle((b.cols.start, b.rows.start), b.cols.size, b.rows.size) for b in blocks],
                facecolor=color, edgecolor="black", linewidth=0.3))
        if ranks is not None:
            smallest_label = 0.04 * max(m, n)
            for block, rank in zip(self.far, ranks):
                if min(block.shape) >= smallest_label:
                    ax.text(block.cols.start + block.cols.size / 2, block.rows.start + block.rows.size / 2,
                            str(int(rank)), ha="center", va="center", fontsize=6)
        ax.set_xlim(0, n)
        ax.set_ylim(m, 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title or f"{len(self.near)} near, {len(self.far)} far blocks")
        fig.savefig(path, dpi=150, bbox_inches="tight")
