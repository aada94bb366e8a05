"""meli_hf.registration: `import meli_hf` imports neither torch nor transformers, and the architectures are in the
Auto classes however the imports are ordered."""

import subprocess
import sys

import pytest

AUTO_AFTER = """
import sys
import meli_hf
assert "torch" not in sys.modules and "transformers" not in sys.modules, "import meli_hf imported the stack"
from transformers import AutoConfig, AutoModelForSequenceClassification
config = AutoConfig.for_model("meli-lstm", vocab_size=10, embedding_dim=4, hidden_layers=[4], lstm_hidden_size=4)
print(type(config).__name__, type(AutoModelForSequenceClassification.from_config(config)).__name__)
print(any(type(finder).__name__ == "RegisterAfterImport" for finder in sys.meta_path))
"""
AUTO_BEFORE = """
from transformers import AutoConfig, AutoModelForSequenceClassification
import meli_hf
config = AutoConfig.for_model("meli-lstm", vocab_size=10, embedding_dim=4, hidden_layers=[4], lstm_hidden_size=4)
print(type(config).__name__, type(AutoModelForSequenceClassification.from_config(config)).__name__)
import sys
print(any(type(finder).__name__ == "RegisterAfterImport" for finder in sys.meta_path))
"""


@pytest.mark.parametrize("program", [AUTO_AFTER, AUTO_BEFORE], ids=["auto-classes-imported-after", "before"])
def test_architectures_are_registered_whatever_the_import_order(program):
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # Registered, and the finder that waited for the Auto modules is gone once both came.
    assert result.stdout.split() == ["MeliLSTMConfig", "MeliLSTMForSequenceClassification", "False"]


def test_a_config_alone_registers_with_the_config_auto_class():
    program = (
        "import meli_hf\nfrom transformers import AutoConfig\nprint(type(AutoConfig.for_model('meli-cnn')).__name__)"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "MeliCNNConfig"
