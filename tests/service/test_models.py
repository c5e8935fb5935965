"""GET /models, /models/{name} (the card) and /models/{name}/summary (JSON, text, canonical)."""

from __future__ import annotations

import httpx
import pytest

from repository import ModelCard, SummaryRecord, render_text

pytestmark = pytest.mark.xdist_group("service")


def test_list_models(client: httpx.Client, cards: dict[str, ModelCard]) -> None:
    r = client.get("/models")
    assert r.status_code == 200
    listed = {m["name"]: m for m in r.json()["models"]}
    assert set(listed) == set(cards)
    for name, card in cards.items():
        m = listed[name]
        assert m["status"] == "READY" and m["reason"] is None
        assert m["provider"] == "CPUExecutionProvider"  # CUDA was asked for first: not installed here
        assert m["served_versions"] == [card.latest_version] and m["latest_version"] == card.latest_version
        assert m["input"] == card.input.model_dump() and m["num_classes"] == card.num_classes
        assert m["params"] == card.summary.total_params and m["macs"] == card.summary.total_macs
        assert m["accuracy"] == card.versions[card.latest_version].variants["fp32"].test_top1
        assert m["architecture"] == card.architecture.name and m["quick"] == card.quick
        variants = {v["precision"]: v for v in m["versions"][0]["variants"]}
        assert variants["fp32"]["status"] == "READY" and variants["fp32"]["provider"] == "CPUExecutionProvider"
        assert m["samples"] == len(card.versions[card.latest_version].samples)


def test_list_models_names_the_family_and_the_paper(client: httpx.Client, cards: dict[str, ModelCard]) -> None:
    import models

    listed = {m["name"]: m for m in client.get("/models").json()["models"]}
    for name, card in cards.items():
        info = models.get_model_info(card.architecture.name)
        assert listed[name]["family"] == info.family
        paper = info.paper
        assert listed[name]["paper"] == {
            "title": paper.title,
            "authors": paper.authors,
            "year": paper.year,
            "url": paper.url,
        }


def test_model_card(client: httpx.Client, cards: dict[str, ModelCard]) -> None:
    for name, card in cards.items():
        r = client.get(f"/models/{name}")
        assert r.status_code == 200
        assert ModelCard.model_validate(r.json()) == card


def test_summary_json_and_canonical(client: httpx.Client, cards: dict[str, ModelCard]) -> None:
    for name, card in cards.items():
        assert SummaryRecord.model_validate(client.get(f"/models/{name}/summary").json()) == card.summary
        canonical = client.get(f"/models/{name}/summary", params={"config": "canonical"}).json()
        assert SummaryRecord.model_validate(canonical) == card.canonical_summary


def test_summary_text_is_the_zoo_table(client: httpx.Client, cards: dict[str, ModelCard]) -> None:
    for name, card in cards.items():
        for config, record in (("trained", card.summary), ("canonical", card.canonical_summary)):
            r = client.get(f"/models/{name}/summary", params={"format": "text", "config": config})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            assert r.text == render_text(record) + "\n"


def test_summary_says_every_parameter_of_a_trained_network_is_trainable(
    client: httpx.Client, cards: dict[str, ModelCard]
) -> None:
    # The quick models were trained from scratch: nothing was frozen (the export's freezing of its
    # serving copy is not what the summary reports). Feature extraction: tests/export/test_trained_summary.py.
    for name, card in cards.items():
        body = client.get(f"/models/{name}/summary").json()
        total = card.summary.total_params
        assert (body["total_params"], body["trainable_params"], body["non_trainable_params"]) == (total, total, 0)
        text = client.get(f"/models/{name}/summary", params={"format": "text"}).text
        assert f"Trainable params: {total:,}\n" in text and "Non-trainable params: 0\n" in text


def test_summary_text_matches_a_fresh_summarize() -> None:
    import models

    for name, shape in (("lenet5", (1, 32, 32)), ("resnet18", (3, 64, 64))):
        with __import__("torch").device("meta"):
            net = models.create_model(name)
        fresh = models.summarize(net, shape)
        assert render_text(SummaryRecord.model_validate(fresh.to_dict())) == fresh.to_text()


@pytest.mark.parametrize(
    "path", ["/models/nope", "/models/nope/summary", "/models/..%2F..%2Fetc/summary", "/models/NOPE"]
)
def test_unknown_model_is_404(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["code"] in ("model_not_found", "not_found") and r.json()["status"] == 404


def test_bad_summary_options_are_422(client: httpx.Client, grey_model: str) -> None:
    for params in ({"format": "xml"}, {"config": "huge"}):
        r = client.get(f"/models/{grey_model}/summary", params=params)
        assert r.status_code == 422 and r.json()["code"] == "invalid_input"


def test_summary_at_a_depth_is_summarize_at_that_depth(client: httpx.Client, cards: dict[str, ModelCard]) -> None:
    import torch

    import models

    for name, card in cards.items():
        arch, options = card.architecture.name, card.architecture.options
        with torch.device("meta"):
            trained, canonical = models.create_model(arch, **options), models.create_model(arch)
        configs = (("trained", trained, card.input.shape), ("canonical", canonical, canonical.info.input_size))
        for config, net, shape in configs:
            stored = card.summary if config == "trained" else card.canonical_summary
            assert stored.depths, f"{name} {config}: the card has no depths"
            for depth in stored.depths:
                expected = models.summarize(net, shape, depth=depth, name=stored.model)
                params = {"config": config, "depth": depth}
                assert SummaryRecord.model_validate(client.get(f"/models/{name}/summary", params=params).json()) == (
                    expected
                )
                text = client.get(f"/models/{name}/summary", params={**params, "format": "text"}).text
                assert text == expected.to_text() + "\n"


def test_summary_past_the_deepest_block_is_every_layer(client: httpx.Client, cards: dict[str, ModelCard]) -> None:
    """As ``python -m models summary NAME --depth N``: past the deepest block every row is a leaf."""
    for name, card in cards.items():
        deepest = max(card.summary.depths)
        r = client.get(f"/models/{name}/summary", params={"depth": deepest + 1})
        assert r.status_code == 200, r.text
        assert [row["name"] for row in r.json()["layers"]] == [row.name for row in card.summary.layers]
