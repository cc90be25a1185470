"""One-to-many (DAC) queries: a training-only branch that leaves the model's own outputs unchanged."""

from __future__ import annotations

import pytest
import torch

from fusereview.training.data import TrainDataset, collate
from fusereview.training.forward import forward_all_layers
from fusereview.training.losses import SetCriterion
from fusereview.training.modelio import load_model, tokenize
from fusereview.training.o2m import one_to_many_queries
from fusereview.training.toydata import toy_samples


@pytest.fixture(scope="module")
def setup():
    m = load_model("tiny", image_size=112, seed=5)
    for mod in m.model.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0  # so that two training forwards are comparable
    ds = TrainDataset(
        toy_samples(3, size=112, seed=2),
        [(1, "fuse neutrals")],
        image_size=112,
        mask_size=32,
        augment="none",
        negatives_per_image=0.5,
    )
    b = collate([ds[i] for i in range(len(ds))])
    ids, am = tokenize(m.tokenizer, b["prompts"])
    return m, b, ids, am


def _fwd(m, b, ids, am, **kw):
    return forward_all_layers(m.model, pixel_values=b["pixels"], input_ids=ids, attention_mask=am, **kw)


def _hooks(model) -> int:
    return sum(len(mod._forward_hooks) + len(mod._forward_pre_hooks) for mod in model.modules())


def test_o2m_is_off_at_inference_and_changes_nothing_there(setup) -> None:
    m, b, ids, am = setup
    m.model.eval()
    try:
        with torch.no_grad():
            plain = _fwd(m, b, ids, am)
            asked = _fwd(m, b, ids, am, o2m=True)
            raw = m.model(pixel_values=b["pixels"], input_ids=ids, attention_mask=am,
                          input_boxes=torch.zeros(len(ids), 1, 4), input_boxes_labels=torch.full((len(ids), 1), -10))  # fmt: skip
    finally:
        m.model.train()
    assert set(asked) == set(plain) and not any(k.startswith("o2m_") for k in asked)
    for k in plain:
        assert torch.equal(asked[k], plain[k]), k
    assert torch.equal(asked["pred_logits"], raw.pred_logits) and torch.equal(asked["masks"], raw.pred_masks)


def test_training_copies_leave_the_models_own_queries_unchanged(setup) -> None:
    m, b, ids, am = setup
    m.model.train()
    n_q = m.model.config.detr_decoder_config.num_queries
    n_layers = m.model.config.detr_decoder_config.num_layers
    with torch.no_grad():
        plain = _fwd(m, b, ids, am)
        both = _fwd(m, b, ids, am, o2m=True)
    # the model's own queries: what a forward without the copies gives (the copies are masked out of
    # their self-attention); only float summation order may differ
    for k in plain:
        torch.testing.assert_close(both[k], plain[k], rtol=1e-5, atol=1e-6)
    assert both["o2m_logits"].shape == (n_layers, len(ids), n_q)
    assert both["o2m_boxes"].shape == (n_layers, len(ids), n_q, 4)
    assert both["o2m_masks"].shape == plain["masks"].shape
    # the copies skip self-attention, so they are not the same queries again
    assert not torch.allclose(both["o2m_logits"], both["logits"], atol=1e-6)


def test_the_model_is_restored_after_the_block_even_when_the_forward_fails(setup) -> None:
    m = setup[0]
    decoder = m.model.detr_decoder
    embed, ref = decoder.query_embed, decoder.reference_points
    keys = list(m.model.state_dict())
    hooks = _hooks(m.model)
    with pytest.raises(RuntimeError), one_to_many_queries(m.model) as n_q:
        assert n_q == embed.weight.shape[0] and decoder.query_embed is not embed
        raise RuntimeError("a failing forward")
    assert decoder.query_embed is embed and decoder.reference_points is ref
    assert list(m.model.state_dict()) == keys and _hooks(m.model) == hooks


def test_eager_attention_gets_an_additive_mask_with_the_same_result(setup) -> None:
    m, b, ids, am = setup
    m.model.train()
    with torch.no_grad():
        sdpa = _fwd(m, b, ids, am, o2m=True)
    cfg = m.model.detr_decoder.config
    before = cfg._attn_implementation
    cfg._attn_implementation = "eager"
    try:
        with torch.no_grad():
            eager = _fwd(m, b, ids, am, o2m=True)
    finally:
        cfg._attn_implementation = before
    for k in ("logits", "o2m_logits", "o2m_boxes"):
        torch.testing.assert_close(eager[k], sdpa[k], rtol=1e-4, atol=1e-5)


def test_o2m_losses_train_the_shared_query_embeddings(setup) -> None:
    m, b, ids, am = setup
    m.model.train()
    out = _fwd(m, b, ids, am, o2m=True)
    _, comps = SetCriterion(recipe="sam3")(out, b)
    assert comps["loss_o2m"].item() > 0
    m.model.zero_grad(set_to_none=True)
    comps["loss_o2m"].backward()  # the copies' loss alone
    g = m.model.detr_decoder.query_embed.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    m.model.zero_grad(set_to_none=True)
