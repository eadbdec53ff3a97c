"""The Dagster UI in a real browser: ``dagster dev`` (webserver and daemon) on 127.0.0.1
against a materialized instance, driven by Playwright with Debian's chromium.

Screenshots go to the test's temp dir, and also to ``$VAZHI_SCREENSHOT_DIR`` when it is set
(that is how the README's images are made).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from vazhi_assets_tests.conftest import (
    Materialized,
    copy_crawl,
    free_port,
    link_vendor_text,
    seed_crawl,
)

PROJECT = Path(__file__).resolve().parent.parent
LINEAGE = ["raw_crawl", "english_replay", "pretraining_mix", "recipe", "cpt_shards",
           "cpt_adapter", "sft_adapter", "merged_model", "gguf_f16", "gguf_q8_0", "gguf_q4_k_m",
           "benchmark_table", "model_card"]
TINY = ("tiny-ui-a", "tiny-ui-b")


@pytest.fixture(scope="module")
def webserver(corpus_run: Materialized, tmp_path_factory: pytest.TempPathFactory,
              tiny_base_dir: Path) -> Iterator[tuple[str, dg.DagsterInstance, Path]]:
    import yaml

    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS, RESOURCES
    from vazhi_assets.resources import VazhiStorage
    from vazhi_assets.training.recipe_assets import recipe
    from vazhi_assets.training.recipe_registry import add_recipe, register_recipes

    root = tmp_path_factory.mktemp("ui")
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    link_vendor_text(data)
    copy_crawl(corpus_run.data_dir, data)
    instance = dg.DagsterInstance.from_config(str(home))
    seed_crawl(instance, data)
    resources = {**RESOURCES, "storage": VazhiStorage(root=str(data))}
    result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=dg.AssetSelection.groups(
        "corpus"), instance=instance, resources=resources)
    assert result.success
    # every bundled recipe is a partition; two of a user's own, snapshotted, wait for a backfill
    register_recipes(instance, user_dir=data / "recipes")
    for name in TINY:
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"inherits": "demo", "name": name,
                                        "model": {"name": str(tiny_base_dir)}}), "utf-8")
        add_recipe(path, instance, user_dir=data / "recipes")
        assert dg.materialize([recipe], partition_key=name, instance=instance,
                              resources=resources).success
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "VAZHI_DATA_DIR": str(data)}
    # `dagster dev` as `make dev` runs it: the webserver plus the daemon that dequeues runs
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p",
         str(port), "-m", "vazhi_assets.definitions"],
        cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=(root / "web.log").open("w"),
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/server_info", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("dagster dev did not start:\n"
                            + (root / "web.log").read_text()[-3000:])
            time.sleep(1)
    yield url, instance, root
    os.killpg(server.pid, signal.SIGTERM)  # dagster dev stops webserver and daemon
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:  # a loaded machine: do not leave them behind
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def page(webserver: tuple[str, dg.DagsterInstance, Path]) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    from vazhi_assets.crawl.browser import find_chromium

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(find_chromium()),
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"])
        tab = browser.new_page(viewport={"width": 1800, "height": 1100})
        yield tab
        browser.close()


def visit(page: object, url: str) -> None:
    page.goto(url, wait_until="networkidle", timeout=60_000)
    skip = page.get_by_role("button", name="Skip")  # the first-visit newsletter dialog
    if skip.count():
        skip.click()


def screenshot(page: object, root: Path, name: str) -> None:
    path = root / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("VAZHI_SCREENSHOT_DIR"):
        target = Path(os.environ["VAZHI_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.name)


def test_graph_shows_lineage_from_crawl_to_gguf(webserver, page) -> None:  # noqa: ANN001
    url, _, root = webserver
    visit(page, f"{url}/assets/model_card?view=lineage&lineageScope=upstream&lineageDepth=30")
    for name in LINEAGE:
        page.get_by_text(name, exact=True).first.wait_for(state="visible", timeout=30_000)
    # long names are shortened in the middle on the graph: "traini…_provenance"
    page.get_by_text(re.compile(r"^traini.*_provenance$")).first.wait_for(timeout=30_000)
    for group in ("crawl", "corpus", "feedback", "training", "export", "evaluation"):
        assert page.get_by_text(group, exact=True).count() >= 1, group
    screenshot(page, root, "lineage")


def test_asset_page_renders_its_metadata_plot(webserver, page) -> None:  # noqa: ANN001
    url, _, root = webserver
    visit(page, f"{url}/assets/cleaning_report")
    page.get_by_text("retention_by_source", exact=True).first.wait_for(timeout=30_000)
    key = page.get_by_text("funnel_chart", exact=True).first
    key.locator("xpath=ancestor::tr[1]").get_by_text("[Show Markdown]").click()
    chart = page.locator('img[src^="data:image/png"]').first
    chart.wait_for(state="visible", timeout=30_000)
    # a decoded matplotlib plot (900x450 px), not a broken-image icon
    assert chart.evaluate("img => img.naturalWidth") > 300
    screenshot(page, root, "cleaning_report")
    # Escape closes the dialog even while its backdrop is still animating in (a click on
    # "Close" can be intercepted by the backdrop on a loaded machine)
    page.keyboard.press("Escape")
    chart.wait_for(state="hidden", timeout=30_000)


def test_materialize_from_the_ui(webserver, page) -> None:  # noqa: ANN001
    url, instance, root = webserver
    before = {r.run_id for r in instance.get_runs()}
    visit(page, f"{url}/assets/cleaning_report")
    page.locator("button").filter(has_text=re.compile(r"^Materialize$")).first.click()
    confirm = page.get_by_role("button", name="Confirm")  # asked when an upstream is missing
    try:
        confirm.wait_for(timeout=5_000)
        confirm.click()
    except Exception:  # noqa: BLE001 - no question asked: the run was launched directly
        pass
    deadline = time.monotonic() + 240
    new = []
    while time.monotonic() < deadline:
        new = [r for r in instance.get_runs() if r.run_id not in before]
        if new and new[0].is_finished:
            break
        time.sleep(2)
    assert new, "no run was launched from the UI"
    run = new[0]
    assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
    assert run.asset_selection == {dg.AssetKey("cleaning_report")}
    latest = instance.get_latest_materialization_event(dg.AssetKey("cleaning_report"))
    assert latest.run_id == run.run_id
    visit(page, f"{url}/runs/{run.run_id}")
    page.get_by_text("Success", exact=False).first.wait_for(timeout=30_000)
    screenshot(page, root, "run_from_ui")


def test_merged_model_page_lists_the_recipe_partitions(webserver, page) -> None:  # noqa: ANN001
    url, instance, root = webserver
    visit(page, f"{url}/assets/merged_model?view=partitions")
    for name in ("demo", "qalb-urdu", "alif-urdu-demo", "vazhi-tamil", "saudi-dialect", *TINY):
        page.get_by_text(name, exact=True).first.wait_for(state="visible", timeout=30_000)
    screenshot(page, root, "recipe_partitions")


def test_backfill_of_two_recipes_launched_from_the_ui(webserver, page) -> None:  # noqa: ANN001
    url, instance, root = webserver
    before = {r.run_id for r in instance.get_runs()}
    visit(page, f"{url}/assets/base_model?view=partitions")
    page.get_by_role("button", name="Materialize…").first.click()
    page.get_by_text("Select a partition or create one", exact=True).first.click()
    page.keyboard.type("tiny-ui")
    page.get_by_text("Select all (2)", exact=True).first.click()
    page.keyboard.press("Escape")
    page.get_by_text("2 partitions", exact=True).first.wait_for(timeout=15_000)
    screenshot(page, root, "backfill_two_recipes")
    page.get_by_role("button", name="Launch backfill").first.click()
    deadline = time.monotonic() + 420
    runs = []
    while time.monotonic() < deadline:
        runs = [r for r in instance.get_runs() if r.run_id not in before]
        if len(runs) == 2 and all(r.is_finished for r in runs):
            break
        time.sleep(2)
    assert len(runs) == 2, f"{len(runs)} runs launched by the backfill"
    assert {r.tags.get("dagster/partition") for r in runs} == set(TINY)
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [r.status for r in runs]
    assert all(r.tags.get("dagster/backfill") for r in runs)
    status = instance.get_status_by_partition(dg.AssetKey("base_model"), list(TINY),
                                              dg.DynamicPartitionsDefinition(name="recipe"))
    assert set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}
    assert (root / "data" / "models" / "tiny-ui-a" / "base_model" / "model").exists()
