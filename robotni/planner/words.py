"""The planner's vocabulary, English and Indonesian, and the regular-expression pieces built from it.

Patterns run on the lowercased prompt. Every choice a sentence leaves open is fixed here, once, and documented in
docs/planner.md: "weekly" is Monday, "twice a day" is 09:00 and 21:00, "malam" after 6 is the evening.
"""

from __future__ import annotations

import re

# A word starts here: not inside another word, number, time (07:00), path (Asia/Jakarta) or hyphenated name.
B = r"(?<![\w:./'-])"
# A word ends here: "daily" is not the start of "daily-report", "7" not the start of "7:30".
E = r"(?![\w/'-]|[:.]\d)"

NUMBER_WORDS = {
    **{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9},
    **{"ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty-five": 45},
    **{"satu": 1, "dua": 2, "tiga": 3, "empat": 4, "lima": 5, "enam": 6, "tujuh": 7, "delapan": 8, "sembilan": 9},
    **{"sepuluh": 10, "sebelas": 11, "dua belas": 12, "lima belas": 15, "dua puluh": 20, "tiga puluh": 30},
}
NUMBER = r"(\d{1,7}|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + ")"

EVERY = r"(?:every|each|per|tiap-tiap|setiap|tiap|saban)"
# Interval units in seconds; "jam" is an hour after a number ("2 jam") and o'clock before one ("jam 2").
UNITS = {
    r"s|secs?|seconds?|detik": 1,
    r"m|mins?|minutes?|menit": 60,
    r"h|hrs?|hours?|jam": 3600,
    r"d|days?|hari": 86400,
    r"w|weeks?|minggu|pekan": 7 * 86400,
}
UNIT = "(" + "|".join(UNITS) + ")"


def unit_seconds(word: str) -> int:
    return next(seconds for pattern, seconds in UNITS.items() if re.fullmatch(pattern, word))


def number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


# Day of the week as cron counts them (Sunday 0). "minggu" is also "week": see timing.py.
DAYS = {
    r"mondays?|mon|senin": 1,
    r"tuesdays?|tues?|selasa": 2,
    r"wednesdays?|wed|rabu": 3,
    r"thursdays?|thurs?|thu|kamis": 4,
    r"fridays?|fri|jum'?at|jumaat": 5,
    r"saturdays?|sat|sabtu": 6,
    r"sundays?|sun|minggu|ahad": 0,
}
DAY = "(" + "|".join(DAYS) + ")"
DAY_ABBREVIATIONS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def day_number(word: str) -> int:
    return next(number for pattern, number in DAYS.items() if re.fullmatch(pattern, word))


MONTHS = {
    r"january|jan|januari": 1,
    r"february|feb|februari|pebruari": 2,
    r"march|mar|maret": 3,
    r"april|apr": 4,
    r"may|mei": 5,
    r"june|jun|juni": 6,
    r"july|jul|juli": 7,
    r"august|aug|agustus|agu": 8,
    r"september|sept?": 9,
    r"october|oct|oktober|okt": 10,
    r"november|nov|nopember": 11,
    r"december|dec|desember|des": 12,
}
MONTH = "(" + "|".join(MONTHS) + ")"
MONTH_ABBREVIATIONS = ("", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def month_number(word: str) -> int:
    return next(number for pattern, number in MONTHS.items() if re.fullmatch(pattern, word))


ORDINAL_WORDS = {
    **{"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8},
    **{"ninth": 9, "tenth": 10, "fifteenth": 15, "twentieth": 20, "pertama": 1, "kedua": 2, "ketiga": 3},
}
ORDINAL = r"(\d{1,2})(?:st|nd|rd|th)|(" + "|".join(sorted(ORDINAL_WORDS, key=len, reverse=True)) + ")"


def ordinal(digits: str | None, word: str | None) -> int:
    return int(digits) if digits else ORDINAL_WORDS[word or ""]


# The fixed times of "twice a day" and "three times a day" (documented in docs/planner.md).
TIMES_PER_DAY = {1: [(0, 0)], 2: [(9, 0), (21, 0)], 3: [(8, 0), (14, 0), (20, 0)]}
TIMES_WORDS = {"once": 1, "twice": 2, "thrice": 3, "sekali": 1}

# Timezone abbreviations a person in Indonesia writes after a time, and the universal ones.
ZONE_WORDS = {"wib": "Asia/Jakarta", "wita": "Asia/Makassar", "wit": "Asia/Jayapura", "utc": "UTC", "gmt": "UTC"}

# Words that carry no meaning for a plan: read silently, never listed as unplaced.
FILLER = frozenset(
    """run runs running execute start trigger please pls the a an and or then also job jobs task tasks schedule
    it its of to for in on at me my with using use params parameters param worker type script that this
    jalankan jalan jalankanlah tolong mohon dan atau lalu kemudian dengan pakai yang untuk buat buatkan
    tugas pekerjaan setel atur jadwal jadwalkan di pada ke""".split()  # noqa: SIM905  words read as a sentence, not a column
)
# Words about time: one left unplaced means the timing was not understood, so the plan is refused, not guessed.
TIME_VOCABULARY = frozenset(
    """every each tiap setiap second seconds minute minutes hour hours day days week weeks month months year
    years detik menit jam hari minggu pekan bulan tahun daily hourly weekly monthly yearly harian mingguan
    bulanan tahunan weekday weekdays weekend weekends am pm pagi siang sore malam noon midnight morning
    evening afternoon night last terakhir first except kecuali between antara until sampai hingga tanggal
    pukul times kali sehari once twice""".split()  # noqa: SIM905  words read as a sentence, not a column
)
TIME_VOCABULARY_PATTERNS = (DAY, MONTH)
# Everyday English words that are also day or month abbreviations: left over, they were not about time.
NOT_ONLY_TIME = frozenset({"may", "mar", "sun", "sat", "wed"})
