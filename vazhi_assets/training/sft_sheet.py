"""The bundled Saudi-dialect demo sheet: its rows and a reproducible .xlsx writer.

Regenerate it with ``python -m vazhi_assets.training.sft_build --write-sheet``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vazhi_assets.training.sft_loaders import XLSX_COLUMNS

#: The bundled demo sheet: (dialect, English text, dialect translation, in-game context).
#: Najdi (central Arabia: وش، وين، الحين، تبي) and Hijazi (west coast: إيش، فين، دحين، تبغى).
SAUDI_DEMO_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("Najdi", "Welcome, traveller! Come in and rest.",
     "يا هلا والله بالمسافر! تفضل ارتاح.", "Innkeeper greets the player at the door"),
    ("Hijazi", "Welcome, traveller! Come in and rest.",
     "أهلين يا مسافر! اتفضل ارتاح شوية.", "Innkeeper greets the player at the door"),
    ("Najdi", "What do you want to buy?",
     "وش تبي تشتري؟", "Shop menu opens"),
    ("Hijazi", "What do you want to buy?",
     "إيش تبغى تشتري؟", "Shop menu opens"),
    ("Najdi", "Where are you going?",
     "وين رايح؟", "Guard stops the player at the city gate"),
    ("Hijazi", "Where are you going?",
     "فين رايح؟", "Guard stops the player at the city gate"),
    ("Najdi", "I don't have enough money.",
     "ما عندي فلوس تكفي.", "Player tries to buy an item they cannot afford"),
    ("Hijazi", "I don't have enough money.",
     "ما معايا فلوس كفاية.", "Player tries to buy an item they cannot afford"),
    ("Najdi", "Hurry up, the storm is coming!",
     "عجل، العاصفة جاية!", "Sandstorm warning before a desert crossing"),
    ("Hijazi", "Hurry up, the storm is coming!",
     "يلا بسرعة، العاصفة جاية!", "Sandstorm warning before a desert crossing"),
    ("Najdi", "I don't know where the key is.",
     "ما أدري وين المفتاح.", "Villager answers a quest question"),
    ("Hijazi", "I don't know where the key is.",
     "ما أدري فين المفتاح.", "Villager answers a quest question"),
    ("Najdi", "Give me the map, please.",
     "عطني الخريطة لو سمحت.", "Companion asks the player for the map"),
    ("Hijazi", "Give me the map, please.",
     "ادّيني الخريطة لو سمحت.", "Companion asks the player for the map"),
    ("Najdi", "Let's go now, it's getting late.",
     "يلا نمشي الحين، تأخر الوقت.", "Companion urges the player to leave the market"),
    ("Hijazi", "Let's go now, it's getting late.",
     "يلا نمشي دحين، الوقت تأخر.", "Companion urges the player to leave the market"),
    ("Najdi", "Don't worry, I'll help you.",
     "لا تشيل هم، أنا بساعدك.", "Ally offers help after a failed quest"),
    ("Hijazi", "Don't worry, I'll help you.",
     "لا تشيل هم، أنا حساعدك.", "Ally offers help after a failed quest"),
    ("Najdi", "What is this?",
     "وش ذا؟", "Player inspects an unknown object"),
    ("Hijazi", "What is this?",
     "إيش دا؟", "Player inspects an unknown object"),
    ("Najdi", "This sword is very good.",
     "هالسيف زين مرة.", "Blacksmith praises a weapon"),
    ("Hijazi", "This sword is very good.",
     "السيف دا حلو مرة.", "Blacksmith praises a weapon"),
    ("Najdi", "Why are you late?",
     "ليش تأخرت؟", "Quest giver when the player returns after the deadline"),
    ("Hijazi", "Why are you late?",
     "ليش اتأخرت؟", "Quest giver when the player returns after the deadline"),
    ("Najdi", "Come back tomorrow.",
     "تعال بكرة.", "Shop is closed at night"),
    ("Hijazi", "Come back tomorrow.",
     "تعال بكرة.", "Shop is closed at night"),
    ("Najdi", "How are you, my friend?",
     "وش لونك يا صاحبي؟", "Old friend meets the player in the village"),
    ("Hijazi", "How are you, my friend?",
     "كيفك يا صاحبي؟", "Old friend meets the player in the village"),
    ("Najdi", "The road to the oasis is dangerous.",
     "الطريق للواحة خطير.", "Scout warns before the player leaves the camp"),
    ("Hijazi", "The road to the oasis is dangerous.",
     "الطريق للواحة خطير.", "Scout warns before the player leaves the camp"),
    ("Najdi", "I want to rent a camel.",
     "أبي أستأجر ناقة.", "Player talks to the stable master"),
    ("Hijazi", "I want to rent a camel.",
     "أبغى أستأجر ناقة.", "Player talks to the stable master"),
    ("Najdi", "Enough talking, let's fight!",
     "خلاص يكفي كلام، يلا نتقاتل!", "Bandit leader before a boss fight"),
    ("Hijazi", "Enough talking, let's fight!",
     "خلاص كفاية كلام، يلا نتضارب!", "Bandit leader before a boss fight"),
    ("Najdi", "Thank you, may God reward you.",
     "مشكور، الله يجزاك خير.", "Villager thanks the player after a rescue"),
    ("Hijazi", "Thank you, may God reward you.",
     "شكرًا، الله يجزاك خير.", "Villager thanks the player after a rescue"),
    ("Najdi", "The well is dry, we need water.",
     "البير ناشف، نبي موية.", "Farmer explains the village's problem"),
    ("Hijazi", "The well is dry, we need water.",
     "البير ناشف، نبغى موية.", "Farmer explains the village's problem"),
    ("Najdi", "Wait here until I come back.",
     "انتظر هنا لين أرجع.", "Companion leaves to scout ahead"),
    ("Hijazi", "Wait here until I come back.",
     "استنى هنا لين أرجع.", "Companion leaves to scout ahead"),
)


def write_saudi_demo_sheet(
    path: Path | str, rows: Sequence[tuple[str, str, str, str]] = ()
) -> Path:
    """Write the Saudi-dialect demo sheet (``SAUDI_DEMO_ROWS`` unless ``rows``) as .xlsx.

    The output is byte-for-byte reproducible: openpyxl stamps the save time into
    ``docProps/core.xml`` and into every zip entry, so the workbook is re-zipped with a fixed
    timestamp (2024-01-01) and regenerating the file only changes it when the rows change.
    """
    import io
    import re
    import zipfile

    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "translations"
    sheet.append(list(XLSX_COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows or SAUDI_DEMO_ROWS:
        sheet.append(list(row))
    for letter, width in zip("ABCD", (10, 42, 42, 48), strict=True):
        sheet.column_dimensions[letter].width = width
    workbook.properties.creator = "vazhi_assets"
    buffer = io.BytesIO()
    workbook.save(buffer)

    stamp = "2024-01-01T00:00:00Z"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = re.sub(r"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rf"\g<1>{stamp}",
                              data.decode("utf-8"))
                data = text.encode("utf-8")
            entry = zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, data)
    path.write_bytes(out.getvalue())
    return path
