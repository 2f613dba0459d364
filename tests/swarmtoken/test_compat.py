"""A node compares its model with the swarm's before it enrols and names the first difference."""

from torch import nn

from swarmtoken.node.compat import first_difference, fingerprint, incompatibility
from trainer.models import build_model

SWARM = {"model": "mlp", "n_features": 64, "n_classes": 10}


def test_a_node_built_like_the_swarm_fits():
    model = build_model("mlp", 64, 10, seed=7)  # the seed changes values, not the fingerprint
    assert incompatibility(SWARM, "mlp", 64, 10, model) is None


def test_a_node_whose_data_has_two_classes_is_told_so_first():
    problem = incompatibility(SWARM, "mlp", 64, 2, build_model("mlp", 64, 2, seed=0))
    assert problem == ("this node's data has 2 classes, the swarm's model has 10; give it data with the swarm's "
                       "label set (labels 0..9)")


def test_feature_count_and_model_name_are_named():
    assert incompatibility(SWARM, "mlp", 30, 10, build_model("mlp", 30, 10, seed=0)) == \
        "this node's data has 30 features, the swarm's model takes 64"
    assert incompatibility(SWARM, "cnn", 64, 10, build_model("cnn", 64, 10, seed=0)) == \
        "[model] name is 'cnn', the swarm's model is 'mlp'"


def test_the_first_tensor_that_differs_is_named():
    ours = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    theirs = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    assert first_difference(fingerprint(ours), fingerprint(theirs)) == \
        "tensor '0.weight' has shape (32, 64), the swarm's (16, 64)"
    double = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).double()
    assert first_difference(fingerprint(double), fingerprint(ours)) == "tensor '0.weight' is float64, the swarm's float32"
    deeper = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.ReLU(), nn.Linear(10, 10))
    assert first_difference(fingerprint(deeper), fingerprint(ours)) == \
        "the models have 6 and 4 tensors (first unmatched: '4.weight')"
    renamed = nn.Sequential()
    renamed.add_module("input", nn.Linear(64, 32))
    assert first_difference(fingerprint(renamed), fingerprint(ours)) == "tensor 'input.weight' is '0.weight' in the swarm's model"


def test_buffers_count_too():
    with_norm = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    names = [name for name, _, _ in fingerprint(with_norm)]
    assert "1.num_batches_tracked" in names and ("1.num_batches_tracked", (), "int64") in fingerprint(with_norm)
    assert first_difference(fingerprint(with_norm), fingerprint(with_norm)) is None


def test_a_record_without_the_swarms_model_cannot_be_checked():
    assert incompatibility({}, "mlp", 64, 2, build_model("mlp", 64, 2, seed=0)) is None
    assert incompatibility({"n_classes": 0}, "mlp", 64, 2, build_model("mlp", 64, 2, seed=0)) is None


def test_a_swarm_model_this_node_does_not_have_is_named():
    problem = incompatibility({**SWARM, "model": "resnet-mini"}, "resnet-mini", 64, 10, build_model("mlp", 64, 10, 0))
    assert problem.startswith("the swarm's model 'resnet-mini' is not registered on this node")
