"""The rates the finished jobs measured (study.report.rates), and the profile `cost` section a report writes from
them: read back by the profile loader, as a user pastes it."""
from __future__ import annotations

import io

import pandas as pd
import pytest
import yaml
from report_records import CODE_VERSION, table_of, write_all

from study.grids.profile import load_profile
from study.report import build_report
from study.report.rates import measured_rates, profile_snippet

GPU = "NVIDIA H100 80GB HBM3"


def _record(job_id, stage, axes, protocol, metrics=()):
    return {"job_id": job_id, "stage": stage, "grid": "g", "axes": axes, "metrics": list(metrics),
            "protocol": protocol, "code_version": CODE_VERSION, "wall_time_s": 1.0,
            "finished_at": "2024-01-01T00:00:00+00:00"}


def _pretrain(job_id, method, rate, devices=1, device=GPU, width=64, size=224, seed=0):
    axes = {"method": method, "dataset": "a", "size": 1000, "corruption": "none", "seed": seed}
    return _record(job_id, "pretrain", axes, {"backbone": "resnet50", "width": width, "devices": devices,
                                              "device_kind": device, "images_per_s": rate,
                                              "augmentation": {"image_size": size}})


def _evaluate(job_id, protocol, rate, device=GPU, seed=0):
    axes = {"method": "simclr", "dataset": "a", "size": 1000, "corruption": "none", "seed": seed, "protocol": protocol,
            "eval_dataset": "a"}
    return _record(job_id, "evaluate", axes,
                   {"devices": 1, "device_kind": device, "images_per_s": rate, "transform": {"image_size": 224},
                    "pretrain": {"backbone": "resnet50", "width": 64}},
                   [{"metric": "top1", "value": 0.5, "labeled_size": 100, "level": None}])


def _records():
    return [_pretrain("p1", "simclr", 1400.0, devices=2), _pretrain("p2", "simclr", 1600.0, devices=2, seed=1),
            _pretrain("p3", "byol", 1200.0, devices=2), _pretrain("p4", "random", None),
            _pretrain("p5", "simclr", 40.0, device="cpu", width=8, size=28, seed=2),
            _evaluate("e1", "linear", 3000.0), _evaluate("e2", "knn", 2800.0),
            _evaluate("e3", "finetune", {"100": 500.0, "1000": 1300.0}),  # the largest labeled size's rate
            _evaluate("e4", "linear", None, seed=1)]  # every feature from the cache: no rate


def test_each_kind_gives_the_median_rate_per_device_of_its_jobs():
    rates = measured_rates(table_of(_records()))
    got = {(r.kind, r.method, r.device): (r.jobs, r.images_per_s, r.lowest, r.highest) for r in rates.itertuples()}
    assert got == {("pretrain", "simclr", GPU): (2, pytest.approx(750.0), 700.0, 800.0),  # 2 GPUs a job
                   ("pretrain", "byol", GPU): (1, 600.0, 600.0, 600.0),
                   ("pretrain", "simclr", "cpu"): (1, 40.0, 40.0, 40.0),
                   ("extract", "", GPU): (2, pytest.approx(2900.0), 2800.0, 3000.0),
                   ("finetune", "", GPU): (1, 1300.0, 1300.0, 1300.0)}
    gpu = rates[rates["device"] == GPU]
    assert set(gpu["width"]) == {"64"} and set(gpu["image_size"]) == {"224"} and set(gpu["backbone"]) == {"resnet50"}
    assert list(rates["kind"]) == ["pretrain"] * 3 + ["finetune", "extract"]  # the cost section's order
    assert measured_rates(table_of([_pretrain("p4", "random", None)])).empty


def test_the_snippet_is_a_cost_section_the_profile_loader_reads(tmp_path):
    """Of the device with the most jobs (the GPU's 6, not the CPU's 1): SimCLR's pretraining rate, the fine-tune and
    extraction rates, where they were measured, and BYOL as a factor of SimCLR's on that backbone (SimCLR's rate over
    BYOL's; not the profile's top-level method_factor, which would price every backbone's BYOL jobs by it); a profile
    holding it loads."""
    snippet = profile_snippet(measured_rates(table_of(_records())), "g")
    assert snippet.startswith(f"# measured by 6 finished job(s) of grid g on {GPU}: median images/s per GPU")
    cost = yaml.safe_load(snippet)["cost"]
    assert cost == {"throughput": {"resnet50": {"pretrain": 750, "finetune": 1300, "extract": 2900, "width": 64,
                                                "image_size": 224, "device": GPU, "method_factor": {"byol": 1.25}}}}
    assert "short jobs" not in snippet
    (tmp_path / "p.yaml").write_text("partition: gpu\n" + snippet)
    profile = load_profile(tmp_path / "p.yaml")
    assert profile.cost.throughput["resnet50"] == {"pretrain": 750, "finetune": 1300, "extract": 2900}
    assert profile.cost.factor("resnet50", "byol") == 1.25 and profile.cost.factor("resnet18", "byol") == 1.2
    assert profile.cost.measured_at["resnet50"] == {"width": 64, "image_size": 224, "device": GPU}
    assert profile_snippet(measured_rates(table_of([])), "g") == ""


def test_the_snippet_says_when_its_rates_come_from_short_jobs():
    """Rates of jobs of a few seconds are mostly their start-up and first steps: the snippet says so."""
    records = [_pretrain("p1", "simclr", 40.0, device="cpu", width=8, size=28)]
    records[0]["protocol"]["wall_time_s"] = 3.0
    rates = measured_rates(table_of(records))
    assert list(rates["job_seconds"]) == [3.0]
    snippet = profile_snippet(rates, "g")
    assert "# Measured on short jobs (the longest: resnet50 (3 s))" in snippet
    assert yaml.safe_load(snippet)["cost"]["throughput"]["resnet50"] == {"pretrain": 40.0, "width": 8,
                                                                           "image_size": 28, "device": "cpu"}
    records[0]["protocol"]["wall_time_s"] = 600.0
    assert "short jobs" not in profile_snippet(measured_rates(table_of(records)), "g")


def test_a_report_writes_the_rates_and_the_snippet_and_shows_it(tmp_path):
    write_all(tmp_path / "w", _records())
    summary = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=io.StringIO())
    out = tmp_path / "r"
    assert pd.read_csv(out / "rates.csv")["jobs"].sum() == 7
    assert yaml.safe_load((out / "rates.yaml").read_text())["cost"]["throughput"]["resnet50"]["extract"] == 2900
    html = (out / "index.html").read_text()
    assert "<pre># measured by 6 finished job(s) of grid g" in html and 'href="rates.yaml"' in html
    assert summary.index == out / "index.html"
    write_all(tmp_path / "w2", [_pretrain("p4", "random", None)])  # no rate: a note, and no rates file
    build_report(tmp_path / "w2", tmp_path / "r2", grid="g", log=io.StringIO())
    assert "Skipped: no finished job recorded a rate yet" in (tmp_path / "r2" / "index.html").read_text()
    assert not (tmp_path / "r2" / "rates.yaml").exists()
