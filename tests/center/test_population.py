"""The simulator's synthetic population (PL-2, PL-4): deterministic, big enough, with the flag mix."""

from __future__ import annotations

from datetime import date

from app.center.kana import is_katakana_name, normalise_kana
from app.center.simulator.names import CITIES
from app.center.simulator.population import DEFAULT_SEED, Population, generate_population

PREFECTURES = tuple({city[0] for city in CITIES})


def _fingerprint(population: Population) -> list[tuple[object, ...]]:
    return [
        (
            p.name_kana,
            p.name_kanji,
            p.birth_date,
            p.phone,
            p.addresses,
            p.loans,
            p.cards,
            *p.delinquencies,
            *p.gazette_entries,
            *p.suspensions,
        )
        for p in population
    ]


def test_the_same_seed_gives_the_same_people_and_another_seed_other_people(population: Population) -> None:
    again = generate_population(seed=DEFAULT_SEED, size=len(population))
    assert _fingerprint(again) == _fingerprint(population)
    other = generate_population(seed=DEFAULT_SEED + 1, size=200)
    assert _fingerprint(other) != _fingerprint(population)[:200]
    # A smaller population with the same seed is the start of the bigger one: tests can rely on index 0.
    assert _fingerprint(generate_population(seed=DEFAULT_SEED, size=50)) == _fingerprint(population)[:50]


def test_the_default_population_has_ten_thousand_people_and_the_flag_mix(population: Population) -> None:
    size = len(population)
    assert size >= 10_000
    share = {
        "no_transactions": sum(not p.has_transactions for p in population) / size,
        "delinquency": sum(p.has_delinquency for p in population) / size,
        "gazette": sum(p.in_gazette for p in population) / size,
        "suspended": sum(p.suspended for p in population) / size,
    }
    assert 0.17 <= share["no_transactions"] <= 0.23
    assert 0.05 <= share["delinquency"] <= 0.15
    assert 0.01 <= share["gazette"] <= 0.04
    assert 0.005 <= share["suspended"] <= 0.03
    # Nobody without transactions carries loan-side history.
    assert all(not p.delinquencies and not p.gazette_entries for p in population if not p.has_transactions)


def test_people_look_plausible(population: Population) -> None:
    keys = set()
    for p in population:
        assert date(1940, 1, 1) <= p.birth_date <= date(2005, 12, 31)
        assert is_katakana_name(p.kana_key) and p.kana_key == normalise_kana(p.name_kana)
        assert p.name_kana == p.name_kana.strip() and "\u3000" in p.name_kana  # full-width space
        assert p.latest_address.address.startswith(PREFECTURES) and "丁目" in p.latest_address.address
        assert len(p.latest_address.postal_code) == 8 and p.latest_address.postal_code[3] == "-"
        for loan in p.loans:
            assert 0 <= loan.balance <= loan.amount and loan.monthly_payment > 0
            assert loan.started_on.year - p.birth_date.year >= 19
        for entry in p.gazette_entries:
            assert entry.court.endswith(("地方裁判所", "支部")) and "(フ)" in entry.case_number
        for suspension in p.suspensions:
            assert suspension.kind == "取引停止処分" and suspension.clearing_house.endswith("交換所")
        keys.add((p.kana_key, p.birth_date))
    # The center identifies a subject by kana and birth date: the pair must be unique.
    assert len(keys) == len(population)


def test_lookup_folds_kana_the_way_terminals_type_it(population: Population) -> None:
    someone = population[0]
    hiragana = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in someone.name_kana)
    for typed in (someone.name_kana, hiragana, f" {someone.surname_kana} {someone.given_kana} "):
        assert population.find(typed, someone.birth_date) is someone
    assert normalise_kana("ﾔﾏﾀﾞ ﾀﾛｳ") == "ヤマダタロウ"
    assert normalise_kana("やまだ　たろう") == "ヤマダタロウ"
    assert population.find(someone.name_kana, date(1939, 12, 31)) is None
