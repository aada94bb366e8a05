"""Deterministic synthetic MeLi-style dataset in the course's preprocessed format.

Writes `spanish.{train,validation,test}.jsonl.gz`, `spanish_token_to_index.json.gz` and a small word2vec text
file `word_vectors.txt.gz`, so default runs and tests need neither the network nor the real data. With
`--rows 4895280` it writes a train split of the course's real size for scale benchmarks.

    python scripts/sample.py --output_dir data/sample

Files of the same names already in the folder (perhaps the real course files) are never replaced.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import MeliError
from ..files import atomic_path
from .tokenization import PAD_TOKEN, UNK_TOKEN, course_tokenize

DEFAULT_TRAIN_ROWS = 4000
DEFAULT_SEED = 2019
SAMPLE_VECTOR_DIM = 32
SAMPLE_DIR = Path.home() / ".cache" / "meli_hf" / f"sample-{DEFAULT_TRAIN_ROWS}-{DEFAULT_SEED}"

# category -> (nouns, brands, attributes). Brands and attributes overlap between categories on purpose.
CATALOGUE: dict[str, tuple[list[str], list[str], list[str]]] = {
    "CELLPHONES": (
        ["Celular", "Smartphone", "Teléfono Celular"],
        ["Samsung", "Motorola", "Xiaomi", "Apple iPhone", "Huawei"],
        ["Libre", "64gb", "128gb", "Dual Sim", "4g Lte", "Liberado", "Cámara 48mp"],
    ),
    "NOTEBOOKS": (
        ["Notebook", "Laptop", "Ultrabook"],
        ["Lenovo", "Hp", "Dell", "Asus", "Acer", "Apple Macbook"],
        ["Core I5", "Core I7", "8gb Ram", "Ssd 256gb", "15.6 Pulgadas", "Ryzen 5"],
    ),
    "TELEVISIONS": (
        ["Smart Tv", "Televisor", "Tv Led"],
        ["Samsung", "Lg", "Philips", "Noblex", "Tcl"],
        ["4k", "50 Pulgadas", "Full Hd", "Uhd", "Netflix", "32 Pulgadas"],
    ),
    "SNEAKERS": (
        ["Zapatillas", "Zapatilla Running", "Botitas Urbanas"],
        ["Nike", "Adidas", "Puma", "Topper", "Fila"],
        ["Talle 42", "Hombre", "Mujer", "Air Max", "Originales", "Running"],
    ),
    "REFRIGERATORS": (
        ["Heladera", "Heladera Con Freezer", "Refrigerador"],
        ["Samsung", "Whirlpool", "Gafa", "Patrick", "Lg"],
        ["No Frost", "Inverter", "340 Litros", "Acero Inoxidable", "Cíclica"],
    ),
    "WASHING_MACHINES": (
        ["Lavarropas", "Lavarropas Automático", "Lavasecarropas"],
        ["Drean", "Whirlpool", "Samsung", "Longvie", "Electrolux"],
        ["8kg", "Carga Frontal", "Inverter", "1000 Rpm", "Blanco"],
    ),
    "COAT_RACKS": (
        ["Perchero", "Perchero De Pie", "Perchero De Pared"],
        ["Madera", "Hierro", "Nórdico"],
        ["Vintage", "Moderno", "Roble", "Ganchos", "Entrada"],
    ),
    "NAIL_DRYERS": (
        ["Cabina Uñas", "Secador De Uñas", "Lámpara Uv Uñas"],
        ["Sun", "Profesional", "Gelish"],
        ["Led", "48w", "Uñas Gelificadas", "Esmaltado Semipermanente", "Timer"],
    ),
    "AUDIO_AND_VIDEO_CABLES_AND_ADAPTERS": (
        ["Cable Hdmi", "Adaptador Hdmi", "Cable Rca"],
        ["Sony", "Philips", "Genérico", "Belkin"],
        ["Full Hd", "1080p", "Ficha Oro", "3 Metros", "Mallado"],
    ),
    "LIVING_ROOM_SETS": (
        ["Juego De Living", "Sillón Living", "Juego Sillones"],
        ["Chenille", "Pana", "Cuero Ecológico"],
        ["3 Cuerpos", "Moderno", "Esquinero", "Almohadones", "Gris"],
    ),
    "FREEZERS": (
        ["Freezer", "Freezer Vertical", "Freezer Horizontal"],
        ["Gafa", "Peabody", "Electrolux", "Patrick", "Inelro"],
        ["Litros", "Dual", "Blanco", "Bajo Consumo", "Tapa Ciega"],
    ),
    "SERVING_AND_HOME_TRAYS": (
        ["Bandeja", "Bandeja Desayuno", "Bandeja Servir"],
        ["Madera", "Melamina", "Acero"],
        ["Expandido", "Rectangular", "Asas", "Cocina", "Decorativa"],
    ),
    "MOTORCYCLE_HELMETS": (
        ["Casco Moto", "Casco Integral", "Casco Rebatible"],
        ["Hawk", "Ls2", "Vertigo", "Shiro", "Mac"],
        ["Certificado", "Visor", "Talle", "Negro Mate", "Doble Visor"],
    ),
    "BICYCLES": (
        ["Bicicleta", "Bicicleta Mountain Bike", "Bici Playera"],
        ["Venzo", "Raleigh", "Olmo", "Topmega", "Fire Bird"],
        ["Rodado 29", "Shimano", "21 Velocidades", "Aluminio", "Frenos Disco"],
    ),
    "DOLLS": (
        ["Muñeca", "Muñeca Bebote", "Muñeca Articulada"],
        ["Barbie", "Mattel", "Cry Babies", "Lol Surprise"],
        ["Accesorios", "Original", "Niñas", "Juguete", "Vestidos"],
    ),
    "PERFUMES": (
        ["Perfume", "Eau De Parfum", "Fragancia"],
        ["Carolina Herrera", "Paco Rabanne", "Antonio Banderas", "Calvin Klein", "Dior"],
        ["100ml", "Mujer", "Hombre", "Original", "Edt"],
    ),
    "COFFEE_MAKERS": (
        ["Cafetera", "Cafetera Express", "Cafetera Cápsulas"],
        ["Nespresso", "Philips", "Oster", "Peabody", "Atma"],
        ["Espumador", "Bar Presión", "Acero", "Automática", "Filtro"],
    ),
    "VIDEO_GAME_CONSOLES": (
        ["Consola", "Consola Videojuegos", "Consola Portátil"],
        ["Sony Playstation", "Xbox", "Nintendo Switch", "Sega"],
        ["Joystick", "Juegos", "1tb", "Slim", "Digital"],
    ),
    "HEADPHONES": (
        ["Auriculares", "Auricular Bluetooth", "Headset Gamer"],
        ["Sony", "Jbl", "Xiaomi", "Samsung", "Logitech"],
        ["Inalámbricos", "Micrófono", "Bluetooth", "Cancelación Ruido", "Manos Libres"],
    ),
    "DRILLS": (
        ["Taladro", "Taladro Percutor", "Atornillador"],
        ["Black Decker", "Bosch", "Dewalt", "Makita", "Stanley"],
        ["Inalámbrico", "Batería", "700w", "Mandril", "Maletín"],
    ),
    "MATTRESSES": (
        ["Colchón", "Colchón Resortes", "Colchón Espuma"],
        ["Piero", "Cannon", "Simmons", "Suavestar"],
        ["2 Plazas", "Queen", "Pillow Top", "Densidad", "140x190"],
    ),
    "BABY_STROLLERS": (
        ["Cochecito", "Cochecito Bebé", "Coche Paseo"],
        ["Infanti", "Chicco", "Love", "Graco"],
        ["Travel System", "Huevito", "Reversible", "Liviano", "Plegable"],
    ),
    "WRISTWATCHES": (
        ["Reloj", "Reloj Pulsera", "Reloj Smartwatch"],
        ["Casio", "Tommy Hilfiger", "Swatch", "Samsung", "Xiaomi"],
        ["Hombre", "Mujer", "Sumergible", "Acero", "Cronógrafo"],
    ),
    "SUNGLASSES": (
        ["Anteojos De Sol", "Lentes De Sol", "Gafas"],
        ["Ray Ban", "Oakley", "Vulk", "Infinit"],
        ["Polarizados", "Aviador", "Uv400", "Mujer", "Hombre"],
    ),
    "BACKPACKS": (
        ["Mochila", "Mochila Urbana", "Mochila Escolar"],
        ["Jansport", "Nike", "Adidas", "Wilson", "Totto"],
        ["Notebook", "Reforzada", "Litros", "Porta Notebook", "Impermeable"],
    ),
    "AIR_CONDITIONERS": (
        ["Aire Acondicionado", "Split", "Aire Split Frío Calor"],
        ["Samsung", "Lg", "Bgh", "Surrey", "Philco"],
        ["Inverter", "3000 Frigorías", "Frío Calor", "Wifi", "Instalación"],
    ),
    "GUITARS": (
        ["Guitarra", "Guitarra Criolla", "Guitarra Eléctrica"],
        ["Fender", "Gibson", "Yamaha", "Gracia", "Epiphone"],
        ["Funda", "Cuerdas", "Stratocaster", "Clásica", "Ecualizador"],
    ),
    "DOG_FOODS": (
        ["Alimento Perro", "Balanceado Perro", "Comida Perros"],
        ["Royal Canin", "Pro Plan", "Eukanuba", "Dog Chow", "Old Prince"],
        ["Adulto", "Cachorro", "15kg", "Raza Mediana", "Bolsa"],
    ),
    "SUPPLEMENTS": (
        ["Proteína", "Suplemento", "Creatina"],
        ["Star Nutrition", "Ena", "Xtrenght", "Gentech"],
        ["Whey", "Chocolate", "Masa Muscular", "Monohidrato", "Vainilla"],
    ),
    "CAR_TIRES": (
        ["Neumático", "Cubierta", "Neumáticos Auto"],
        ["Pirelli", "Michelin", "Bridgestone", "Firestone", "Fate"],
        ["Rodado 15", "195/65", "Aro 14", "Radial", "Colocación"],
    ),
}
GENERIC_WORDS = [
    "Nuevo",
    "Original",
    "Oferta",
    "Envío Gratis",
    "Garantía",
    "Usado",
    "Importado",
    "Pack",
    "Combo",
    "Kit",
    "Negro",
    "Blanco",
    "Rojo",
    "Azul",
    "Gris",
    "Premium",
    "Zona Norte",
    "Caba",
    "Cuotas",
    "Mayor",
]
CONNECTORS = ["De", "Para", "Con", "Y", "En", "Sin"]


def _title(rng: random.Random, category: str) -> str:
    nouns, brands, attributes = CATALOGUE[category]
    words = [rng.choice(nouns)]
    if rng.random() < 0.8:
        words.append(rng.choice(brands))
    words += rng.sample(attributes, rng.randint(1, 3))
    if rng.random() < 0.35:
        words.insert(rng.randint(1, len(words)), rng.choice(CONNECTORS))
    if rng.random() < 0.5:
        words.append(rng.choice(GENERIC_WORDS))
    if rng.random() < 0.3:
        words.append(f"{rng.choice(['Modelo', 'Mod', 'Art'])} {rng.randint(10, 9999)}")
    if rng.random() < 0.15:
        # Titles that name another category's product as an accessory make the task less trivial.
        other_nouns, _, _ = CATALOGUE[rng.choice(list(CATALOGUE))]
        words.append(f"Para {rng.choice(other_nouns)}")
    return " ".join(words)


def _rows(rng: random.Random, n_rows: int, categories: list[str]):
    for _ in range(n_rows):
        target = rng.randrange(len(categories))
        reliable = rng.random() < 0.4
        title = _title(rng, categories[target])
        if not reliable and rng.random() < 0.03:
            target = rng.randrange(len(categories))  # unreliable labels carry some noise, as in the challenge
        yield title, categories[target], target, "reliable" if reliable else "unreliable"


def _split_sizes(train_rows: int) -> dict[str, int]:
    # The course's proportions: validation is a quarter of train, test about 1.3% (at least 1,000 rows).
    return {"train": train_rows, "validation": train_rows // 4, "test": max(train_rows // 77, 1000)}


def sample_files(output_dir: Path) -> list[Path]:
    return [output_dir / f"spanish.{split}.jsonl.gz" for split in _split_sizes(1)] + [
        output_dir / "spanish_token_to_index.json.gz",
        output_dir / "word_vectors.txt.gz",
    ]


@contextlib.contextmanager
def _gzip_output(path: Path, compresslevel: int = 9) -> Iterator[gzip.GzipFile]:
    """A gzip file that appears only once complete; mtime 0 and the final name in its header keep the bytes
    identical from run to run."""
    with (
        atomic_path(path) as temporary,
        open(temporary, "wb") as raw,
        gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0) as fh,
    ):
        yield fh


def generate_sample(
    output_dir: str | Path,
    train_rows: int = DEFAULT_TRAIN_ROWS,
    seed: int = DEFAULT_SEED,
    overwrite: bool = False,
) -> Path:
    """Write the course-format files for a synthetic dataset; the same arguments always give the same bytes.
    Files of the same names are never replaced unless `overwrite` (they may be a user's real course files); each
    file appears only once complete."""
    output_dir = Path(output_dir)
    if train_rows < 1:
        raise MeliError(f"--rows {train_rows}: must be at least 1")
    existing = [path.name for path in sample_files(output_dir) if path.exists()]
    if existing and not overwrite:
        raise MeliError(f"{output_dir} already holds {', '.join(existing)}; write the sample to another folder")
    categories = sorted(CATALOGUE)
    rng = random.Random(seed)
    splits = {name: list(_rows(rng, n, categories)) for name, n in _split_sizes(train_rows).items()}

    counts = Counter(word for title, *_ in splits["train"] for word in course_tokenize(title))
    words = sorted((w for w, c in counts.items() if c >= 2), key=lambda w: (-counts[w], w))
    token_to_index = {PAD_TOKEN: 0, UNK_TOKEN: 1} | {w: i + 2 for i, w in enumerate(words)}

    for split, rows in splits.items():
        with _gzip_output(output_dir / f"spanish.{split}.jsonl.gz", compresslevel=1) as fh:
            for title, category, target, quality in rows:
                tokens = course_tokenize(title)
                data = [token_to_index.get(t, 1) for t in tokens]
                record = {
                    "language": "spanish",
                    "label_quality": quality,
                    "title": title,
                    "category": category,
                    "split": split,
                    "tokenized_title": tokens,
                    "data": data,
                    "target": target,
                    "n_labels": len(categories),
                    "size": len(data),
                }
                fh.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    with _gzip_output(output_dir / "spanish_token_to_index.json.gz") as fh:
        fh.write(json.dumps(token_to_index, ensure_ascii=False).encode("utf-8"))
    _write_word_vectors(output_dir / "word_vectors.txt.gz", words, categories, np.random.default_rng(seed))
    return output_dir


def _write_word_vectors(path: Path, words: list[str], categories: list[str], rng: np.random.Generator) -> None:
    """Vectors in word2vec text format: words of one category lie near a shared centroid; 1 in 10 words is left out."""
    centroids = {c: rng.normal(size=SAMPLE_VECTOR_DIM) for c in categories}
    home = {}
    for category in categories:
        nouns, brands, attributes = CATALOGUE[category]
        for word in course_tokenize(" ".join(nouns + brands + attributes)):
            home.setdefault(word, category)
    kept = [w for i, w in enumerate(words) if i % 10 != 9]
    with _gzip_output(path) as fh:
        fh.write(f"{len(kept)} {SAMPLE_VECTOR_DIM}\n".encode())
        for word in kept:
            vector = rng.normal(scale=0.5, size=SAMPLE_VECTOR_DIM)
            if word in home:
                vector += centroids[home[word]]
            fh.write((word + " " + " ".join(f"{x:.4f}" for x in vector) + "\n").encode("utf-8"))


def sample_dir() -> Path:
    """The default synthetic sample, generated on first use into the user's cache."""
    if not all(path.exists() for path in sample_files(SAMPLE_DIR)):
        generate_sample(SAMPLE_DIR, overwrite=True)  # meli-hf's own cache: an interrupted earlier generation
    return SAMPLE_DIR
