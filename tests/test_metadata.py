import pytest

from edgefer.errors import MetadataError
from edgefer.labels import DFER_LABELS
from edgefer.metadata import ModelMetadata


def _meta(**kw):
    base = dict(model="msstnet", task="dfer", labels=DFER_LABELS, clip_length=16, frame_size=(112, 112))
    return ModelMetadata(**{**base, **kw})


def test_round_trip_keeps_every_field():
    meta = _meta(mean=(0.5,), std=(0.25,), trained=True, weights_sha256="ab" * 32, custom_ops=("edgefer",),
                 extra={"config": '{"dim": 512}'})
    props = meta.to_props()
    assert all(k.startswith("edgefer.") for k in props)
    assert ModelMetadata.from_props(props) == meta


def test_missing_metadata_is_named():
    with pytest.raises(MetadataError, match="no edgefer metadata"):
        ModelMetadata.from_props({"producer": "pytorch"}, source="x.onnx")


def test_missing_required_field_is_named():
    props = _meta().to_props()
    del props["edgefer.labels"]
    with pytest.raises(MetadataError, match="edgefer.labels"):
        ModelMetadata.from_props(props)


@pytest.mark.parametrize("key,value,needle", [
    ("edgefer.clip_length", "sixteen", "not valid JSON"),
    ("edgefer.clip_length", "16.5", "integer"),
    ("edgefer.trained", "yes", "'true' or 'false'"),
    ("edgefer.colour_order", "CMYK", "colour_order"),
    ("edgefer.format_version", "99", "format"),
    ("edgefer.frame_size", "{}", "JSON list"),
])
def test_malformed_field_raises(key, value, needle):
    props = _meta().to_props()
    props[key] = value
    with pytest.raises(MetadataError, match=needle):
        ModelMetadata.from_props(props)
