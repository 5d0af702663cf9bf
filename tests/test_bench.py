"""Smoke tests of the benchmark drivers (bench/): each runs on tiny sizes and writes valid JSON with the
figures the README section is built from. Nothing here is timed; the numbers are only checked for
consistency (positive, finite, ratios that agree with their parts)."""
import json
import math
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "bench"))
import records  # noqa: E402


def load(path):
    with open(path) as handle:
        return json.loads(handle.read(), parse_constant=lambda name: pytest.fail(f"{name} in JSON"))


def positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_solve_driver_compares_peers_and_greenpc_on_one_matrix(mpirun, tmp_path):
    mpirun(["bench/solve.py", "-solve_problems", "react2d", "-solve_sizes", "12,16",
            "-solve_peers", "jacobi,ilu,amg,lu", "-solve_formats", "dense,sparse,hmatrix",
            "-solve_nrhs", "2", "-solve_budget", "30", "-solve_out", str(tmp_path)])
    data = load(tmp_path / "solve_np1.json")
    assert (tmp_path / "solve_np1.png").exists()
    assert data["machine"]["ranks"] == 1 and data["kernels"]["react2d"]["kernel"]
    for n, row in data["runs"]["react2d"].items():
        results = row["results"]
        assert set(results) == {"jacobi", "ilu", "amg", "lu", "greenpc-dense", "greenpc-sparse",
                                "greenpc-hmatrix"}
        assert results["lu"]["iterations"] == [1, 1] and results["amg"]["converged"]
        for run in results.values():
            assert math.isclose(run["total_s"], run["setup_s"] + run["solve_s"])
        best = row["ratios"]["best_peer"]
        dense = results["greenpc-dense"]
        assert dense["converged"] and dense["details"]["format"] == "dense"
        assert math.isclose(row["ratios"]["dense"]["to_best"],
                            dense["total_s"] / results[best]["total_s"])
        assert results["greenpc-hmatrix"]["estimated_evaluations"] >= results[
            "greenpc-hmatrix"]["details"]["evaluations"] * 0.5


def test_solve_driver_skips_over_budget_and_after_failure(mpirun, tmp_path):
    mpirun(["bench/solve.py", "-solve_problems", "conv2d", "-solve_sizes", "24,32",
            "-solve_peers", "none", "-solve_formats", "dense", "-solve_budget", "0",
            "-solve_nrhs", "1", "-ksp_max_it", "5", "-solve_out", str(tmp_path)])
    rows = load(tmp_path / "solve_np1.json")["runs"]["conv2d"]
    assert "budget" in rows["24"]["results"]["greenpc-dense"]["skipped"]
    assert not rows["24"]["results"]["none"]["converged"]
    assert rows["32"]["results"]["none"]["skipped"] == "did not converge at a smaller N"


def test_solve_driver_solves_smoothing_variants_on_the_same_set_up(mpirun, tmp_path):
    """-solve_smoothing 2: greenpc-sparse+sor2 beside greenpc-sparse, with the plain run's set-up time,
    its own solves, and a ratio to the best peer; and still run at a larger N after the plain one
    failed (-ksp_max_it 20: the sparse kernel alone takes 29 iterations at N = 24, 8 with the sweeps)."""
    mpirun(["bench/solve.py", "-solve_problems", "conv2d", "-solve_sizes", "24,32",
            "-solve_peers", "ilu", "-solve_formats", "sparse", "-solve_smoothing", "2",
            "-solve_nrhs", "1", "-ksp_max_it", "20", "-solve_out", str(tmp_path)])
    rows = load(tmp_path / "solve_np1.json")["runs"]["conv2d"]
    plain, smoothed = rows["24"]["results"]["greenpc-sparse"], rows["24"]["results"]["greenpc-sparse+sor2"]
    assert not plain["converged"] and smoothed["converged"]
    assert smoothed["setup_s"] == plain["setup_s"]
    assert math.isclose(smoothed["total_s"], smoothed["setup_s"] + smoothed["solve_s"])
    assert rows["24"]["ratios"]["sparse+sor2"]["to_best"] > 0 and rows["24"]["ratios"]["sparse"] is None
    assert rows["32"]["results"]["greenpc-sparse+sor2"]["converged"]
    assert rows["32"]["results"]["greenpc-sparse"]["mean"] >= 20


def test_solve_driver_on_two_ranks(mpirun, tmp_path):
    mpirun(["bench/solve.py", "-solve_problems", "rotlap2d", "-solve_sizes", "12",
            "-solve_peers", "ilu,amg,lu", "-solve_formats", "sparse", "-solve_nrhs", "1",
            "-solve_out", str(tmp_path)], ranks=2)
    data = load(tmp_path / "solve_np2.json")
    results = data["runs"]["rotlap2d"]["12"]["results"]
    assert data["machine"]["ranks"] == 2
    assert results["amg"]["details"]["mode"] == "gather" and results["lu"]["iterations"] == [1]


def two_level(mpirun, tmp_path, sizes, ranks=1, *extra):
    mpirun(["bench/two_level.py", "-two_level_problems", "react2d", "-two_level_sizes", sizes,
            "-two_level_radii", "1.5", "-two_level_nrhs", "2", "-two_level_out", str(tmp_path), *extra],
           ranks=ranks)
    return load(tmp_path / f"two_level_np{ranks}.json")["runs"]["react2d"]


@pytest.mark.parametrize("ranks", [1, 2])
def test_two_level_with_one_point_aggregates_is_an_exact_solve(mpirun, tmp_path, ranks):
    """Boxes of one point, no smoothing: P = I, the coarse solve is LU of A (redundant on 2 ranks), and
    every composite that starts with it converges in one iteration."""
    row = two_level(mpirun, tmp_path, "12", ranks, "-two_level_box", "1", "-two_level_smooth", "0")["12"]
    assert set(row) == {"amg", "greenpc-sparse+sor2", "coarse+sor2", "coarse+greenpc-r1.5h+sor2"}
    assert row["coarse+sor2"]["iterations"] == row["coarse+greenpc-r1.5h+sor2"]["iterations"] == [1, 1]
    for run in row.values():
        assert run["converged"] and math.isclose(run["to_amg"], run["total_s"] / row["amg"]["total_s"])


def test_two_level_iterations_do_not_grow_with_n(mpirun, tmp_path):
    """4 x 4 aggregates with a smoothed prolongation: a two-level method, whose iterations stay bounded
    as N doubles, where greenpc's sparse format alone (one level) needs more."""
    rows = two_level(mpirun, tmp_path, "16,32")
    for label in ("coarse+sor2", "coarse+greenpc-r1.5h+sor2"):
        small, large = rows["16"][label]["mean"], rows["32"][label]["mean"]
        assert large <= 14 and large <= small + 2, (label, small, large)
        assert large < rows["32"]["greenpc-sparse+sor2"]["mean"]


def test_setup_cost_breaks_down_phases_and_fits_growth(mpirun, tmp_path):
    mpirun(["bench/setup_cost.py", "-setup_kernels", "poisson2d", "-setup_sizes", "64,256,1024",
            "-setup_formats", "sparse,hmatrix", "-setup_out", str(tmp_path)])
    data = load(tmp_path / "setup_cost.json")
    assert (tmp_path / "setup_cost.png").exists()
    hmatrix = data["runs"]["poisson2d hmatrix"]
    assert [r["n"] for r in hmatrix["sizes"]] == [64, 256, 1024]
    for r in hmatrix["sizes"]:
        phases = r["phases_s"]
        for phase in ("kernel evaluation", "tree and partition", "compression", "PETSc assembly"):
            assert phases[phase] >= 0
        assert math.isclose(sum(phases.values()), r["setup_s"], rel_tol=1e-6)
        assert positive(r["evaluations_per_s"]) and r["evaluations"] >= r["n"]
        assert r["events_s"]["KernelEval"] <= r["events_s"]["SetUp"] + 1e-9
    growth = hmatrix["growth"]
    assert positive(growth["setup_s"]["all"]) and growth["entries"]["all"] > 1.0
    assert data["runs"]["poisson2d sparse"]["growth"]["entries"]["all"] == pytest.approx(1.0, abs=0.15)


def test_apply_counts_bytes_against_the_operator(mpirun, tmp_path):
    mpirun(["bench/apply.py", "-apply_configs",
            "poisson2d:sparse:32,poisson2d:hmatrix:16,poisson2d:hmatrix-cheb:32",
            "-apply_seconds", "0.02", "-apply_rounds", "2", "-apply_copy_mib", "8",
            "-apply_out", str(tmp_path)])
    data = load(tmp_path / "apply_np1.json")
    assert positive(data["copy_bandwidth"]["best"])
    sparse, hmatrix, interpolated = data["runs"]
    assert sparse["format"] == "sparse" and hmatrix["format"] == interpolated["format"] == "hmatrix"
    assert interpolated["config"] == "hmatrix-cheb"
    for r in data["runs"]:
        assert math.isclose(r["bytes_ratio"], r["apply_bytes"] / r["matmult_bytes"])
        assert math.isclose(r["fraction_of_copy"],
                            r["apply_bytes"] / r["apply_s"] / data["copy_bandwidth"]["best"])
        # every stored entry is read with its index at least once
        assert r["apply_bytes"] >= 12 * r["entries"]


def test_apply_on_two_ranks_agrees_on_every_count(mpirun, tmp_path):
    # a product count decided per rank left one rank waiting in a collective MatMult forever
    mpirun(["bench/apply.py", "-apply_configs", "poisson2d:sparse:32", "-apply_seconds", "0.02",
            "-apply_rounds", "2", "-apply_copy_mib", "8", "-apply_out", str(tmp_path)], ranks=2,
           timeout=120)
    data = load(tmp_path / "apply_np2.json")
    assert data["machine"]["ranks"] == 2 and data["runs"][0]["n"] == 32 * 32


def test_kernel_flops_counts_the_network(mpirun, tmp_path):
    from greenpc import models

    assert "react1d" in models.names(), "react1d.gpc is shipped"
    mpirun(["bench/kernel_flops.py", "-flops_models", "react1d", "-flops_pairs", "4096",
            "-flops_matmul_n", "256", "-flops_repeats", "1", "-flops_out", str(tmp_path)])
    data = load(tmp_path / "kernel_flops.json")
    single, double = data["runs"]
    assert (single["precision"], double["precision"]) == ("single", "double")
    # react1d: far 2-50-50-50-1, stages of widths 10 and 15, 3 experts of width 20, scales and gate
    assert single["multiply_adds_per_pair"] == 12055
    if single["xla_flops_per_pair"]:
        assert single["flops_per_pair"] <= single["xla_flops_per_pair"] <= 1.5 * single[
            "flops_per_pair"]
    for r in data["runs"]:
        assert math.isclose(r["fraction_of_matmul"], r["flops"] / r["matmul_flops"])
        if r["transcendentals_per_pair"]:
            # at least one tanh per hidden unit of the far field alone (3 layers of 50)
            assert r["transcendentals_per_pair"] >= 150
            assert math.isclose(r["fraction_of_tanh_bound"], r["evaluations_per_s"] * r[
                "transcendentals_per_pair"] / r["tanh_per_s"])
    assert positive(data["closed_form"]["poisson2d"]["evaluations_per_s"])


def test_training_throughput(mpirun, tmp_path):
    mpirun(["bench/training.py", "-training_problems", "poisson1d", "-training_stages", "first",
            "-training_epochs", "1", "-train_batches_per_epoch", "2", "-training_out",
            str(tmp_path)], timeout=600)
    run = load(tmp_path / "training.json")["runs"][0]
    stage = run["stages"]["first"]
    assert run["pairs_per_step"] == 3000 and stage["steps"] == run["batches_per_epoch"]
    assert math.isclose(stage["samples_per_s"], stage["steps_per_s"] * 3000)


def test_report_states_targets_from_the_results(tmp_path):
    import report
    from greenpc.driver import pushed_options

    machine = {"date": "d", "cpu": "c", "cores": 2, "ranks": 1, "disturbed": False,
               "load_average_1min": 0.1}
    records.save(str(tmp_path / "setup_cost.json"), {"machine": machine, "runs": {"k sparse": {
        "stand_in": False, "sizes": [
            {"n": 4, "setup_s": 1.0, "evaluations": 10, "evaluations_per_s": 10.0,
             "phases_s": {"kernel evaluation": 1.0}, "entries_per_point": 3.0},
            {"n": 16, "setup_s": 8.0, "evaluations": 40, "evaluations_per_s": 10.0,
             "phases_s": {"kernel evaluation": 8.0}, "entries_per_point": 3.0}],
        "growth": {"setup_s": records.growth_exponent([4, 16], [1.0, 8.0]),
                   "entries": {"all": 1.0}, "evaluations": {"all": 1.0}}}}})
    run = {"converged": True, "mean": 5.0, "total_s": 1.0}
    records.save(str(tmp_path / "solve_np1.json"), {
        "machine": machine, "protocol": "p", "kernels": {"conv2d": {"kernel": "k", "stand_in": True}},
        "runs": {"conv2d": {"64": {"results": {"amg": run, "greenpc-sparse": {**run, "total_s": 4.0}},
                                   "ratios": {"best_peer": "amg", "sparse": {"to_best": 4.0}}}}}})
    with pushed_options({"report_results": str(tmp_path)}):
        report.main()
    content = (tmp_path / "README.md").read_text()
    assert content.startswith(report.TITLE)
    assert "| set-up growth exponent <= 1.15 | k sparse 1.50 | **not met** |" in content
    # a target reached with a closed-form stand-in says so in the verdict
    assert ("| greenpc within 10x of classical AMG, conv2d N=64, 1 rank(s) | greenpc-sparse 4.0x "
            "AMG's time (stand-in kernel) | met with a stand-in kernel |") in content
    assert "| 64 | 5 / 1 | 5 / 4 | sparse 4.0x (amg) |" in content


def test_growth_exponent():
    fit = records.growth_exponent([1, 2, 4, 8], [3.0, 6.0, 12.0, 24.0])
    assert fit["all"] == pytest.approx(1.0) and fit["last"] == pytest.approx(1.0)
    assert records.growth_exponent([4], [1.0]) == {"all": None, "last": None}


def test_closed_form_table_agrees_across_rank_counts(mpirun, tmp_path):
    """The exact kernels' table: dense within issue 4's bounds, and 1 and 2 ranks within one iteration."""
    for ranks in (1, 2):
        mpirun(["bench/closed_form.py", "-closed_sizes_1d", "32,256", "-closed_sizes_2d", "16",
                "-closed_out", str(tmp_path)], ranks=ranks, timeout=600)
    mpirun(["bench/closed_form.py", "-closed_report", "-closed_out", str(tmp_path)])
    runs = [load(tmp_path / f"np{k}.json")["results"] for k in (1, 2)]
    assert len(runs[0]) == len(runs[1]) == 2 * (2 * 2 + 1)
    for one, two in zip(*runs):
        bound = 5 if one["problem"] != "poisson2d" else 15
        for row in (one, two):
            assert row["dense"]["converged"] and max(row["dense"]["iterations"]) <= bound
        assert abs(max(one["dense"]["iterations"]) - max(two["dense"]["iterations"])) <= 1
    assert "Largest difference between rank counts where all converged: dense 0" in \
        (tmp_path / "README.md").read_text()


def test_paper_driver_reruns_only_the_chosen_models_and_configurations(mpirun, tmp_path):
    """bench/paper.py in the paper's protocol on tiny 1D sizes; a second run with -paper_models and
    -paper_labels redoes only those and keeps every other result of the first."""
    common = ["bench/paper.py", "-paper_figures", "10", "-paper_peers", "ilu", "-paper_out", str(tmp_path)]
    mpirun(common + ["-paper_sizes_1d", "8,16", "-paper_models", "react1d"])
    first = load(tmp_path / "paper.json")["figure10"]
    assert set(first) == {"react1d"} and (tmp_path / "figure10.png").exists()
    for row in first["react1d"].values():
        assert set(row) == {"ilu", "dense", "hmatrix", "hmatrix-r3"}
        assert row["dense"]["converged"] and row["dense"]["mean"] <= 12
    mpirun(common + ["-paper_sizes_1d", "16", "-paper_models", "react1d", "-paper_labels", "dense"])
    second = load(tmp_path / "paper.json")["figure10"]["react1d"]
    assert set(second) == {"8", "16"} and second["8"] == first["react1d"]["8"]
    assert set(second["16"]) == {"ilu", "dense", "hmatrix", "hmatrix-r3"}
    assert second["16"]["hmatrix"] == first["react1d"]["16"]["hmatrix"]
    assert second["16"]["dense"]["iterations"] == first["react1d"]["16"]["dense"]["iterations"]


def iterations_of(data):
    """{(figure, model or angle, N, label): iterations} of a paper.json's figures 10, 12 and 14."""
    out = {}
    for key in ("figure10", "figure12"):
        for model, rows in data.get(key, {}).items():
            out.update({(key, model, n, label): r["iterations"] for n, row in rows.items()
                        for label, r in row.items()})
    out.update({("figure14", theta, label): r["iterations"] for theta, row in data.get("figure14", {}).items()
                for label, r in row.items()})
    return out


def test_paper_in_parallel_parts_measures_what_one_process_does(mpirun, tmp_path):
    """-paper_jobs 2 cuts the run into parts (a model's figure 12 above N = 128 apart from its smaller
    sizes, figure 14's angles shared out) and merges them: the same iteration counts as one process, every
    angle, the smoothing column, and the plots drawn once from the merged results."""
    common = ["bench/paper.py", "-paper_figures", "10,12,14", "-paper_sizes_1d", "8", "-paper_sizes_2d",
              "10,16", "-paper_heavy_above", "12", "-paper_dense_max", "150", "-paper_rule_max", "10",
              "-paper_peers", "ilu", "-paper_thetas", "3", "-paper_theta_N", "10", "-paper_models",
              "react1d,react2d"]
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    mpirun(common + ["-paper_out", str(serial)], timeout=600)
    mpirun(common + ["-paper_out", str(parallel), "-paper_jobs", "2"], timeout=600)
    one, two = iterations_of(load(serial / "paper.json")), load(parallel / "paper.json")
    # 1D: ilu, dense, 2 H-matrices; 2D N = 10: ilu, dense, 2 H-matrices and the smoothed one, N = 16
    # without dense and rule; figure 14: ilu and hmatrix-aca at 3 angles (one thread per part against
    # two: float32 sums may round apart, so a count may differ by one)
    assert set(one) == set(iterations_of(two)) and len(one) == 4 + (5 + 3) + 3 * 2
    for key, counts in iterations_of(two).items():
        assert max(abs(a - b) for a, b in zip(counts, one[key])) <= 1, key
    assert set(two["parts"]) == {"12-react2d-N16", "12-react2d-N10", "14-0of3", "14-1of3", "14-2of3",
                                 "10-react1d-N8"}      # 2 x 2 angle shares, at most one per angle
    assert all(part["exit"] == 0 for part in two["parts"].values())
    assert set(two["figure12"]["react2d"]["10"]) == {"ilu", "dense", "hmatrix", "hmatrix-aca",
                                                     "hmatrix-aca+sor2"}
    assert "hmatrix" not in two["figure12"]["react2d"]["16"]       # above -paper_rule_max
    for name in ("figure10.png", "figure12.png", "figure14.png"):
        assert (parallel / name).exists()


def test_parts_run_side_by_side_but_never_two_exclusive_ones(tmp_path):
    """bench/jobs.py: every part runs and reports its exit status; parts marked exclusive never overlap
    (each writes its start and end as it runs)."""
    import jobs

    def part(name, status=0):
        code = (f"import time; open({str(tmp_path / name)!r}, 'w').write(str(time.time()) + ' '); "
                f"time.sleep(0.3); open({str(tmp_path / name)!r}, 'a').write(str(time.time())); "
                f"raise SystemExit({status})")
        return [sys.executable, "-c", code]

    parts = {"big1": part("big1"), "big2": part("big2"), "small": part("small", 3)}
    done = jobs.run(parts, 2, str(tmp_path / "logs"), log=lambda text: None, exclusive={"big1", "big2"})
    assert {name: status for name, (status, _) in done.items()} == {"big1": 0, "big2": 0, "small": 3}
    (s1, e1), (s2, e2) = ([float(v) for v in (tmp_path / n).read_text().split()] for n in ("big1", "big2"))
    assert e1 <= s2 or e2 <= s1
    (s3, e3) = [float(v) for v in (tmp_path / "small").read_text().split()]
    assert s3 < e1      # the other slot did not wait for the exclusive ones


def test_paper_figure14_sweeps_angles_off_the_anchors(mpirun, tmp_path):
    """Figure 14 on a small grid: every angle, anchors or not, converges within the issue's bound of 25
    with the shipped rotlap2d model (dense), the peer runs beside it, and the plot and table are written."""
    readme = tmp_path / "README.md"
    readme.write_text("# test\n")
    mpirun(["bench/paper.py", "-paper_figures", "14", "-paper_thetas", "3", "-paper_theta_N", "16",
            "-paper_peers", "none", "-paper_theta_formats", "dense", "-paper_out", str(tmp_path),
            "-paper_readme", str(readme)])
    data = load(tmp_path / "paper.json")["figure14"]
    assert sorted(float(t) for t in data) == pytest.approx([0, math.pi / 3, 2 * math.pi / 3], abs=1e-6)
    for row in data.values():
        assert set(row) == {"none", "dense"}
        assert row["dense"]["converged"] and row["dense"]["mean"] <= 25
        assert 2 * row["dense"]["mean"] < row["none"]["mean"]
    text = readme.read_text()
    assert (tmp_path / "figure14.png").exists() and "18 x 18 grid" in text and "| theta |" in text
