"""The model card (meli_hf.training.model_card): names from the user and the data are shown as written."""

import yaml

from meli_hf.training.arguments import MeliTrainingArguments
from meli_hf.training.model_card import RunCardData, write_model_card


def test_markdown_and_html_in_names_are_escaped(tmp_path):
    output_dir = tmp_path / "run_$x^2$"
    output_dir.mkdir()
    arguments = MeliTrainingArguments(output_dir=str(output_dir), report_to="none")
    card_data = RunCardData(
        model="mlp",
        labels=3,
        data_name="<script>alert(1)</script>_data",
        rows={"train": 10},
        architecture="MeliMLPForSequenceClassification",
        model_arguments={"word_vectors": "vectors_*bold*_$v$.txt"},
        metrics={"test_balanced_accuracy": 0.5, "test_accuracy": 0.5, "test_macro_f1": 0.5},
    )
    card = write_model_card(str(output_dir), arguments, card_data).read_text()
    body = card.split("---", 2)[2]
    # Inside a code span markdown shows HTML literally; nowhere else does the name stand unescaped.
    assert "`<script>alert(1)</script>_data`" in body and body.count("<script>") == 1
    assert r"| word_vectors | vectors\_\*bold\*\_\$v\$.txt |" in body
    assert 'from_pretrained("run_$x^2$")' in body  # a valid Python string in the code block
    assert "`python scripts/predict.py --model 'run_$x^2$' 'Zapatillas Nike Air Talle 42'`" in body
    assert yaml.safe_load(card.split("---")[1])["datasets"] == ["<script>alert(1)</script>_data"]
