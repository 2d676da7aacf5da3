"""The simulator's synthetic population: people and their credit records, all invented (PL-2, PL-4).

Deterministic from the seed: one ``random.Random(seed)`` draws every person in order, so the same seed
and size give the same people on every machine and in every process (the gateway's tests and the
separate simulator process agree on who exists). Dates are drawn against a fixed reference date, not
the clock, for the same reason.

The mix: about 20 % have no transactions at all (no loans, no cards); of the rest about 10 % have a
delinquency (延滞), about 2.5 % an official-gazette bankruptcy entry (官報 破産), and about 1.5 % of
everyone a transaction-suspension record (取引停止処分). The center finds a person by the matching form
of the kana name (app/center/kana.py) and the birth date; that pair is unique in a population.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

from app.center.kana import normalise_kana
from app.center.simulator.names import (
    BANKS,
    BUILDING_NAMES,
    BUILDINGS,
    CARD_ISSUERS,
    CITIES,
    FEMALE_GIVEN_NAMES,
    FINANCE_COMPANIES,
    LOAN_KINDS,
    MALE_GIVEN_NAMES,
    SURNAMES,
    TOWNS,
)

T = TypeVar("T")

DEFAULT_SEED = 20261124
DEFAULT_POPULATION_SIZE = 12000
REFERENCE_DATE = date(2026, 11, 1)
BIRTH_FIRST = date(1940, 1, 1)
BIRTH_LAST = date(2005, 12, 31)
# The day the bank clearing houses moved to the electronic clearing house (電子交換所).
ELECTRONIC_CLEARING_FROM = date(2022, 11, 4)
REIWA_FROM = date(2019, 5, 1)
# Completed contracts stay on a credit record for five years.
RETENTION_YEARS = 5

NO_TRANSACTIONS_SHARE = 0.20
DELINQUENCY_SHARE = 0.10
GAZETTE_SHARE = 0.025
SUSPENSION_SHARE = 0.015


@dataclass(frozen=True, slots=True)
class Address:
    postal_code: str
    address: str
    registered_on: date


@dataclass(frozen=True, slots=True)
class Loan:
    lender: str
    kind: str
    amount: int
    balance: int
    started_on: date
    monthly_payment: int


@dataclass(frozen=True, slots=True)
class CardContract:
    issuer: str
    contracted_on: date
    credit_limit: int
    status: str


@dataclass(frozen=True, slots=True)
class Delinquency:
    lender: str
    occurred_on: date
    amount: int
    resolved_on: date | None


@dataclass(frozen=True, slots=True)
class GazetteEntry:
    kind: str
    published_on: date
    court: str
    case_number: str


@dataclass(frozen=True, slots=True)
class Suspension:
    kind: str
    bank: str
    clearing_house: str
    suspended_on: date


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    index: int
    surname_kanji: str
    given_kanji: str
    surname_kana: str
    given_kana: str
    sex: str
    birth_date: date
    phone: str
    addresses: tuple[Address, ...]  # oldest first
    loans: tuple[Loan, ...]
    cards: tuple[CardContract, ...]
    delinquencies: tuple[Delinquency, ...]
    gazette_entries: tuple[GazetteEntry, ...]
    suspensions: tuple[Suspension, ...]
    kana_key: str

    @property
    def name_kana(self) -> str:
        return f"{self.surname_kana}\u3000{self.given_kana}"

    @property
    def name_kanji(self) -> str:
        return f"{self.surname_kanji}\u3000{self.given_kanji}"

    @property
    def latest_address(self) -> Address:
        return self.addresses[-1]

    @property
    def has_transactions(self) -> bool:
        return bool(self.loans or self.cards)

    @property
    def has_delinquency(self) -> bool:
        return bool(self.delinquencies)

    @property
    def in_gazette(self) -> bool:
        return bool(self.gazette_entries)

    @property
    def suspended(self) -> bool:
        return bool(self.suspensions)


class Population:
    """The people the simulated center knows, with the center's matching index."""

    def __init__(self, *, seed: int, people: list[SyntheticPerson]) -> None:
        self.seed = seed
        self._people = tuple(people)
        self._by_key = {(p.kana_key, p.birth_date): p for p in self._people}

    def __len__(self) -> int:
        return len(self._people)

    def __iter__(self) -> Iterator[SyntheticPerson]:
        return iter(self._people)

    def __getitem__(self, index: int) -> SyntheticPerson:
        return self._people[index]

    def window(self, offset: int, limit: int) -> tuple[SyntheticPerson, ...]:
        return self._people[offset : offset + limit]

    def find(self, name_kana: str, birth_date: date) -> SyntheticPerson | None:
        return self._by_key.get((normalise_kana(name_kana), birth_date))


def generate_population(*, seed: int = DEFAULT_SEED, size: int = DEFAULT_POPULATION_SIZE) -> Population:
    if size < 1:
        raise ValueError("the population needs at least one person")
    # Synthetic test data, not security: a seeded, reproducible generator is the point.
    generator = _Generator(random.Random(seed))  # noqa: S311
    taken: set[tuple[str, date]] = set()
    people = [generator.person(index, taken) for index in range(size)]
    return Population(seed=seed, people=people)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def _months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month - (1 if end.day < start.day else 0)


def _case_number(published_on: date, number: int) -> str:
    if published_on >= REIWA_FROM:
        era, year = "令和", published_on.year - 2018
    else:
        era, year = "平成", published_on.year - 1988
    return f"{era}{'元' if year == 1 else year}年(フ)第{number}号"


class _Generator:
    # Everything is drawn from ``random()`` (one C call) rather than randrange/choice, which cost several
    # Python-level calls each: it halves the time to build the population at every simulator start.

    def __init__(self, rng: random.Random) -> None:
        self.random = rng.random

    def below(self, n: int) -> int:
        return int(self.random() * n)

    def between(self, lowest: int, highest: int, step: int = 1) -> int:
        return lowest + step * self.below((highest - lowest) // step + 1)

    def pick(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]

    def day_between(self, first: date, last: date) -> date:
        if last <= first:
            return first
        return first + timedelta(days=self.below((last - first).days + 1))

    def person(self, index: int, taken: set[tuple[str, date]]) -> SyntheticPerson:
        surname_kanji, surname_kana = self.pick(SURNAMES)
        sex = self.pick("MF")
        while True:
            birth_date = self.day_between(BIRTH_FIRST, BIRTH_LAST)
            era = 0 if birth_date.year < 1965 else 1 if birth_date.year < 1985 else 2
            given_kanji, given_kana = self.pick((MALE_GIVEN_NAMES if sex == "M" else FEMALE_GIVEN_NAMES)[era])
            # The word lists are already in matching form (full-width katakana, no spaces).
            kana_key = surname_kana + given_kana
            # The center identifies a person by kana and birth date, so two people may not share both.
            if (kana_key, birth_date) not in taken:
                taken.add((kana_key, birth_date))
                break
        city = self.pick(CITIES)
        addresses = self.addresses(birth_date, city)
        phone = f"{self.pick(('090', '080', '070'))}-{self.below(10000):04d}-{self.below(10000):04d}"

        loans: tuple[Loan, ...] = ()
        cards: tuple[CardContract, ...] = ()
        delinquencies: tuple[Delinquency, ...] = ()
        gazette: tuple[GazetteEntry, ...] = ()
        if self.random() >= NO_TRANSACTIONS_SHARE:
            loans, cards = self.contracts(birth_date)
            in_gazette = self.random() < GAZETTE_SHARE
            if in_gazette or self.random() < DELINQUENCY_SHARE:
                delinquencies = self.delinquencies(loans, cards)
            if in_gazette:
                gazette = self.gazette(delinquencies[0].occurred_on, city[3])
        suspensions = self.suspensions(birth_date, city[4]) if self.random() < SUSPENSION_SHARE else ()
        return SyntheticPerson(
            index=index,
            surname_kanji=surname_kanji,
            given_kanji=given_kanji,
            surname_kana=surname_kana,
            given_kana=given_kana,
            sex=sex,
            birth_date=birth_date,
            phone=phone,
            addresses=addresses,
            loans=loans,
            cards=cards,
            delinquencies=delinquencies,
            gazette_entries=gazette,
            suspensions=suspensions,
            kana_key=kana_key,
        )

    def addresses(self, birth_date: date, first_city: tuple[str, str, str, str, str]) -> tuple[Address, ...]:
        draw = self.random()
        count = 1 if draw < 0.55 else 2 if draw < 0.85 else 3
        first = _add_years(birth_date, 18)
        moves = sorted(self.day_between(first, REFERENCE_DATE - timedelta(days=60)) for _ in range(count - 1))
        result = []
        for position, registered_on in enumerate([first, *moves]):
            # Most moves stay in the same city; some cross the country.
            city = first_city if position == 0 or self.random() < 0.6 else self.pick(CITIES)
            prefecture, ward, postal_prefix = city[0], city[1], city[2]
            street = (
                f"{self.pick(TOWNS)}{self.between(1, 5)}丁目{self.between(1, 30)}番{self.between(1, 20)}号"
            )
            if self.random() < 0.35:
                building = f"{self.pick(BUILDINGS)}{self.pick(BUILDING_NAMES)}"
                street += f" {building} {self.between(1, 8)}{self.between(1, 12):02d}号室"
            result.append(
                Address(
                    postal_code=f"{postal_prefix}-{self.below(10000):04d}",
                    address=f"{prefecture}{ward}{street}",
                    registered_on=registered_on,
                )
            )
        return tuple(result)

    def contracts(self, birth_date: date) -> tuple[tuple[Loan, ...], tuple[CardContract, ...]]:
        loan_count = self.pick((0, 1, 1, 1, 2, 2, 3))
        card_count = self.pick((0, 1, 1, 2, 2, 3))
        if loan_count == 0 and card_count == 0:
            card_count = 1
        adult = _add_years(birth_date, 20)
        latest_start = REFERENCE_DATE - timedelta(days=30)
        loans = []
        for _ in range(loan_count):
            kind, lowest, highest, term_years, rate = self.pick(LOAN_KINDS)
            earliest = max(adult, _add_years(REFERENCE_DATE, -(term_years + RETENTION_YEARS)))
            started_on = self.day_between(earliest, latest_start)
            amount = self.between(lowest, highest, 100_000)
            monthly_rate, months = rate / 12, term_years * 12
            payment = amount * monthly_rate / (1 - (1 + monthly_rate) ** -months)
            paid = min(_months_between(started_on, REFERENCE_DATE), months)
            growth = (1 + monthly_rate) ** paid
            balance = max(0.0, amount * growth - payment * (growth - 1) / monthly_rate)
            lender = self.pick(
                BANKS if kind in ("住宅ローン", "自動車ローン", "教育ローン") else FINANCE_COMPANIES
            )
            loans.append(
                Loan(
                    lender=lender,
                    kind=kind,
                    amount=amount,
                    balance=0 if paid >= months else int(balance // 1000 * 1000),
                    started_on=started_on,
                    monthly_payment=int(round(payment, -2)),
                )
            )
        cards = [
            CardContract(
                issuer=self.pick(CARD_ISSUERS),
                contracted_on=self.day_between(_add_years(birth_date, 18), latest_start),
                credit_limit=self.between(100_000, 1_000_000, 100_000),
                status="有効" if self.random() < 0.85 else "解約",
            )
            for _ in range(card_count)
        ]
        return tuple(sorted(loans, key=lambda loan: loan.started_on)), tuple(
            sorted(cards, key=lambda card: card.contracted_on)
        )

    def delinquencies(
        self, loans: tuple[Loan, ...], cards: tuple[CardContract, ...]
    ) -> tuple[Delinquency, ...]:
        contracts = [(loan.lender, loan.started_on) for loan in loans] + [
            (card.issuer, card.contracted_on) for card in cards
        ]
        result = []
        for _ in range(self.pick((1, 1, 1, 2))):
            lender, since = self.pick(contracts)
            occurred_on = self.day_between(since + timedelta(days=60), REFERENCE_DATE - timedelta(days=10))
            resolved_on = occurred_on + timedelta(days=self.between(30, 400)) if self.random() < 0.5 else None
            result.append(
                Delinquency(
                    lender=lender,
                    occurred_on=occurred_on,
                    amount=self.between(30_000, 2_000_000, 1_000),
                    resolved_on=resolved_on
                    if resolved_on is not None and resolved_on < REFERENCE_DATE
                    else None,
                )
            )
        return tuple(sorted(result, key=lambda d: d.occurred_on))

    def gazette(self, after: date, court: str) -> tuple[GazetteEntry, ...]:
        published_on = self.day_between(after + timedelta(days=90), REFERENCE_DATE - timedelta(days=5))
        case = _case_number(published_on, self.between(100, 9999))
        entries = [
            GazetteEntry(kind="破産手続開始決定", published_on=published_on, court=court, case_number=case)
        ]
        discharged_on = published_on + timedelta(days=self.between(90, 200))
        if discharged_on < REFERENCE_DATE and self.random() < 0.7:
            entries.append(
                GazetteEntry(kind="免責許可決定", published_on=discharged_on, court=court, case_number=case)
            )
        return tuple(entries)

    def suspensions(self, birth_date: date, clearing_city: str) -> tuple[Suspension, ...]:
        suspended_on = self.day_between(_add_years(birth_date, 20), REFERENCE_DATE - timedelta(days=5))
        clearing_house = (
            "電子交換所" if suspended_on >= ELECTRONIC_CLEARING_FROM else f"{clearing_city}手形交換所"
        )
        return (
            Suspension(
                kind="取引停止処分",
                bank=self.pick(BANKS),
                clearing_house=clearing_house,
                suspended_on=suspended_on,
            ),
        )
