"""Word-level tokenizer for the MLP/CNN/LSTM baselines, as a `PreTrainedTokenizerFast`.

The normalisation reproduces the course's preprocessing inside the `tokenizers` pipeline (so it is saved in
`tokenizer.json` and runs wherever the checkpoint is loaded): lowercase, keep letters only (punctuation and
digits become separators), drop words shorter than 3 characters and Spanish stopwords. A vocabulary trained on
titles can keep digits too (`keep_numbers`, the default for challenge CSV files): sizes and model numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from ..errors import MeliError

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
MAX_VOCABULARY_WORDS = 50_000
MIN_WORD_FREQUENCY = 2
MODEL_MAX_LENGTH = 64

# NLTK's Spanish stopword list (words of 3 or more letters; shorter words are dropped anyway).
SPANISH_STOPWORDS = frozenset(
    """
    al algo algunas algunos ante antes como con contra cual cuando del desde donde durante ella ellas ellos
    entre era erais eran eras eres esa esas ese eso esos esta estaba estabais estaban estabas estad estada
    estadas estado estados estamos estando estar estaremos estará estarán estarás estaré estaréis estaría
    estaríais estaríamos estarían estarías estas este estemos esto estos estoy estuve estuviera estuvierais
    estuvieran estuvieras estuvieron estuviese estuvieseis estuviesen estuvieses estuvimos estuviste
    estuvisteis estuviéramos estuviésemos estuvo está estábamos estáis están estás esté estéis estén estés
    fue fuera fuerais fueran fueras fueron fuese fueseis fuesen fueses fui fuimos fuiste fuisteis fuéramos
    fuésemos había habida habidas habido habidos habiendo habremos habrá habrán habrás habré habréis habría
    habríais habríamos habrían habrías habéis había habíais habíamos habían habías han has hasta hay haya
    hayamos hayan hayas hayáis hemos hube hubiera hubierais hubieran hubieras hubieron hubiese hubieseis
    hubiesen hubieses hubimos hubiste hubisteis hubiéramos hubiésemos hubo las les los más mía mías mío
    míos mis mucho muchos muy nada nos nosotras nosotros nuestra nuestras nuestro nuestros otra otras otro
    otros para pero poco por porque que quien quienes qué sea seamos sean seas sentid sentida sentidas
    sentido sentidos seremos será serán serás seré seréis sería seríais seríamos serían serías seáis sido
    siendo sin sobre sois somos son soy suya suyas suyo suyos también tanto tendremos tendrá tendrán tendrás
    tendré tendréis tendría tendríais tendríamos tendrían tendrías tened tenemos tenga tengamos tengan
    tengas tengo tengáis tenida tenidas tenido tenidos teniendo tenéis tenía teníais teníamos tenían tenías
    tiene tienen tienes todo todos tuve tuviera tuvierais tuvieran tuvieras tuvieron tuviese tuvieseis
    tuviesen tuvieses tuvimos tuviste tuvisteis tuviéramos tuviésemos tuvo tuya tuyas tuyo tuyos una uno
    unos vosotras vosotros vuestra vuestras vuestro vuestros éramos
    """.split()
)


def course_tokenize(title: str) -> list[str]:
    """Reference preprocessing of the course in plain Python; the sample generator writes `tokenized_title` with it.
    Letters are what `str.isalpha` says (Unicode category L, as the tokenizer's `\\p{L}`), so `cm³` gives `cm`."""
    words = "".join(char if char.isalpha() else " " for char in title.lower()).split()
    return [w for w in words if len(w) >= 3 and w not in SPANISH_STOPWORDS]


def title_words(keep_numbers: bool = False) -> Callable[[str], list[str]]:
    """The words a word tokenizer sees in a title (its normaliser, as saved in `tokenizer.json`), for tools that
    learn from the same words, such as the title vectors of `meli_hf.word_vectors`."""
    normalize = _normalizer(keep_numbers).normalize_str
    return lambda title: normalize(title).split()


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching exactly `words`, with shared prefixes factored out: a flat 300-way alternation is tried
    word by word at every position and made tokenization the bottleneck of prediction."""
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 and "" not in node else "(?:" + "|".join(branches) + ")"
        return body + "?" if "" in node and branches else body

    return pattern(trie)


def _normalizer(keep_numbers: bool) -> normalizers.Normalizer:
    stopwords = _trie_pattern(SPANISH_STOPWORDS)
    return normalizers.Sequence(
        [
            normalizers.Lowercase(),
            # Anything that is not a letter (nor, with keep_numbers, a digit) separates words: punctuation vanishes.
            normalizers.Replace(Regex(r"[^\p{L}\p{N}]+" if keep_numbers else r"[^\p{L}]+"), " "),
            # Words of 1-2 letters and stopwords go. Each word is matched from the space before it (hence the
            # leading space), which runs twice as fast as look-arounds at every position.
            normalizers.Prepend(" "),
            normalizers.Replace(Regex(r" (?:\p{L}{1,2}|" + stopwords + r")(?= |$)"), " "),
        ]
    )


def _wrap(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=MODEL_MAX_LENGTH,
        model_input_names=["input_ids", "attention_mask"],
    )


def _empty_word_level(vocab: Mapping[str, int] | None, keep_numbers: bool = False) -> Tokenizer:
    tokenizer = Tokenizer(models.WordLevel(vocab=dict(vocab) if vocab else None, unk_token=UNK_TOKEN))
    tokenizer.normalizer = _normalizer(keep_numbers)
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tokenizer


def word_tokenizer_from_vocabulary(token_to_index: Mapping[str, int]) -> PreTrainedTokenizerFast:
    """Tokenizer whose ids are exactly those of the course's `spanish_token_to_index.json.gz`."""
    if token_to_index.get(PAD_TOKEN) != 0 or token_to_index.get(UNK_TOKEN) != 1:
        raise ValueError(f"The vocabulary must map {PAD_TOKEN} to 0 and {UNK_TOKEN} to 1.")
    return _wrap(_empty_word_level(token_to_index))


def keeps_numbers(keep_numbers: bool | None, data_dir, course_files: bool) -> bool:
    """Whether the words of `data_dir`'s titles keep numbers (`--keep_numbers`, None when not given): by default
    for challenge CSV files, where they lift the word-vector models; never for course files, whose vocabulary has
    none, which refuse a `true`."""
    if course_files:
        if keep_numbers:
            raise MeliError(
                f"--keep_numbers: {data_dir} holds course files, whose word ids come from the course's vocabulary "
                "(no numbers); it applies to a vocabulary trained on the titles of challenge CSV files."
            )
        return False
    return keep_numbers is not False


def train_word_tokenizer(
    titles: Iterable[str],
    max_words: int = MAX_VOCABULARY_WORDS,
    min_frequency: int = MIN_WORD_FREQUENCY,
    keep_numbers: bool = False,
) -> PreTrainedTokenizerFast:
    """Tokenizer whose vocabulary is the `max_words` most frequent words of `titles` seen `min_frequency` times.
    `keep_numbers` also keeps digits, so numbers and words such as `32gb` or `i5` are words too (the course drops
    them); words of one or two letters and stopwords still go."""
    tokenizer = _empty_word_level(None, keep_numbers)
    trainer = trainers.WordLevelTrainer(
        vocab_size=max_words + 2,
        min_frequency=min_frequency,
        special_tokens=[PAD_TOKEN, UNK_TOKEN],
        show_progress=False,
    )
    tokenizer.train_from_iterator(titles, trainer=trainer)
    return _wrap(tokenizer)
