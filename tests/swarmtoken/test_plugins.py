"""Plug-ins in node.toml: `[model] factory` and `[data] loader` name the user's own
functions (`package.module:function`, found next to node.toml); the section's other keys
are their options. Every failure is one line naming the key; a node whose model differs
from the swarm's is refused before the chain, naming the first tensor that differs."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from click.testing import CliRunner

from swarmtoken.cli.commands import main
from swarmtoken.cli.demo import free_port
from swarmtoken.config import SwarmConfig
from swarmtoken.node.compat import fingerprint, incompatibility
from swarmtoken.node.config import NodeConfig
from swarmtoken.node.localdata import load_local_data
from swarmtoken.node.plugins import PluginError, as_rows, node_model, resolve

PLUGIN = '''
import torch
from torch import nn
from torch.utils.data import TensorDataset


def build(width=8, classes=3):
    return nn.Sequential(nn.Flatten(), nn.Linear(4, width), nn.ReLU(), nn.Linear(width, classes))


def not_a_model():
    return 42


def load(rows=30, classes=3):
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(rows, 2, 2, generator=generator)
    y = torch.arange(rows) % classes
    return TensorDataset(X[:20], y[:20]), (X[20:], y[20:])


def broken():
    raise OSError("clinic.csv: permission denied")
'''


@pytest.fixture
def folder(tmp_path, monkeypatch):
    module = f"plug_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path, module


def config(tmp_path, **sections) -> NodeConfig:
    return NodeConfig.from_mapping(sections, base_dir=tmp_path)


def test_the_factory_is_called_with_the_sections_other_keys_after_seeding(folder):
    tmp_path, module = folder
    cfg = config(tmp_path, model={"factory": f"{module}:build", "width": 5})
    assert cfg.model.options == {"width": 5}
    one, two = (node_model(cfg.model, 0, 3, seed=7, base_dir=tmp_path) for _ in range(2))
    assert one[1].out_features == 5
    assert all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values()))


def test_the_loader_gives_train_and_validation_rows_from_datasets_or_tensors(folder):
    tmp_path, module = folder
    cfg = config(tmp_path, data={"loader": f"{module}:load", "rows": 32})
    local = load_local_data(cfg)
    assert local.node.X_train.shape == (20, 2, 2) and local.node.X_val.shape == (12, 2, 2)
    assert local.n_classes == 3 and local.n_features == 0 and local.node.y_train.dtype == torch.int64


@pytest.mark.parametrize("spec, message", [
    ("nowhere:build", "cannot import 'nowhere'"),
    ("{module}:missing", "has no function 'missing'"),
    ("{module}:not_a_model", "returned int, not a torch.nn.Module"),
])
def test_a_factory_that_cannot_be_used_is_one_line_naming_the_key(folder, spec, message):
    tmp_path, module = folder
    cfg = config(tmp_path, model={"factory": spec.format(module=module)})
    with pytest.raises(PluginError, match="^\\[model\\] factory = ") as caught:
        node_model(cfg.model, 0, 3, seed=0, base_dir=tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_loader_that_fails_says_so_with_the_users_error(folder):
    tmp_path, module = folder
    cfg = config(tmp_path, data={"loader": f"{module}:broken"})
    with pytest.raises(PluginError, match="\\[data\\] loader = .*OSError: clinic.csv: permission denied"):
        load_local_data(cfg)


def test_a_malformed_plugin_name_is_a_config_problem():
    with pytest.raises(ValueError, match="\\[model\\] factory: must be empty or name a function as"):
        NodeConfig.from_mapping({"model": {"factory": "models.build"}})
    with pytest.raises(PluginError, match="expected 'package.module:function'"):
        resolve("models.build", "[model] factory")


def test_rows_must_be_pairs_with_integer_labels():
    X = torch.randn(4, 3)
    with pytest.raises(ValueError, match="class indices"):
        as_rows((X, torch.tensor([0.5, 1.0, 0.0, 1.0])))
    with pytest.raises(ValueError, match="as many labels as rows"):
        as_rows((X, torch.tensor([0, 1])))


def test_a_model_unlike_the_swarms_is_refused_naming_the_first_tensor_that_differs(folder):
    tmp_path, module = folder
    swarm = SwarmConfig(model=f"{module}:build", model_options={"width": 8}, n_classes=3).as_dict()
    mine = node_model(config(tmp_path, model={"factory": f"{module}:build", "width": 6}).model, 0, 3, 0, tmp_path)
    problem = incompatibility(swarm, f"{module}:build", 0, 3, mine)
    assert problem == "tensor '1.weight' has shape (6, 4), the swarm's (8, 4)"
    same = node_model(config(tmp_path, model={"factory": f"{module}:build", "width": 8}).model, 0, 3, 0, tmp_path)
    assert incompatibility(swarm, f"{module}:build", 0, 3, same) is None
    assert fingerprint(same)[0] == ("1.weight", (8, 4), "float32")
    other = incompatibility(swarm, "mlp", 0, 3, same)
    assert other == f"[model] factory is 'mlp', the swarm's model is '{module}:build'"


def test_swarm_train_reports_a_bad_plugin_in_one_line_before_the_chain(folder):
    from eth_account import Account

    tmp_path, module = folder
    (tmp_path / "deployment.json").write_text(json.dumps(
        {"network": "development", "chain_id": 1337, "token": "0x" + "1" * 40, "swarm": "0x" + "2" * 40,
         "block": 1, "config": SwarmConfig().as_dict()}))
    (tmp_path / "keystore.json").write_text(json.dumps(Account.encrypt(Account.create().key, "pw", kdf="pbkdf2",
                                                                       iterations=2)))
    port = free_port()
    (tmp_path / "node.toml").write_text(f"""[chain]\nrpc_port = {port}\ndeployment = "deployment.json"
keystore = "keystore.json"\n[data]\nloader = "{module}:load"\n[model]\nfactory = "{module}:nope"\n""")
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "node.toml")])
    assert result.exit_code == 2, result.output
    assert f"[model] factory = '{module}:nope': {module!r} has no function 'nope'" in result.output
    assert "Traceback" not in result.output and f"127.0.0.1:{port}" not in result.output
