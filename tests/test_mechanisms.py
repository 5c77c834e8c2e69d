"""Each rule of the process modules (sim.processes) shows its property: a bound, a monotone response,
a conservation."""

from __future__ import annotations

import numpy as np
import pytest

from sim import compiled, world
from sim.processes import casualties, conflict, insurgency, mediation, recruitment, tribal_politics
from sim.processes import influence as influence_process


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


class TestLogitChoice:
    def test_frequencies_match_closed_form(self):
        utilities = np.tile([0.0, 1.0, -0.5, 2.0], (200_000, 1))
        available = np.ones_like(utilities, dtype=bool)
        available[:, 2] = False
        choice = recruitment.logit_choice(utilities, available, rng(1))
        observed = np.bincount(choice, minlength=4) / len(choice)
        expected = recruitment.choice_probabilities(utilities[:1], available[:1])[0]
        assert observed[2] == 0.0  # an unavailable option is never chosen
        np.testing.assert_allclose(observed, expected, atol=0.004)  # ~4 standard errors at n=200k

    def test_raising_one_utility_only_moves_choices_to_it(self):
        """Path by path (same draws), not just on average: the Gumbel-max property."""
        base = rng(2).normal(size=(5000, 3))
        available = np.ones_like(base, dtype=bool)
        before = recruitment.logit_choice(base, available, rng(3))
        raised = base.copy()
        raised[:, 1] += 0.7
        after = recruitment.logit_choice(raised, available, rng(3))
        moved = before != after
        assert moved.any()
        assert np.all(after[moved] == 1)

    def test_probability_of_an_option_is_monotone_in_its_utility(self):
        gaps = np.linspace(-3, 3, 25)
        utilities = np.column_stack([np.zeros_like(gaps), gaps])
        p = recruitment.choice_probabilities(utilities, np.ones_like(utilities, dtype=bool))[:, 1]
        assert np.all(np.diff(p) > 0)


class TestInfluence:
    def test_spread_conserves_mass_away_from_edges(self):
        presence = np.zeros((2, 41, 41))
        presence[0, 20, 20] = 100.0
        presence[1, 10, 30] = 40.0
        passable = np.ones((41, 41), dtype=bool)
        spread = influence_process.spread_influence(presence, 1.5, passable, 3.0)
        np.testing.assert_allclose(spread.sum(axis=(1, 2)), presence.sum(axis=(1, 2)), rtol=1e-6)
        assert spread[0, 20, 20] < 100.0 and spread[0, 20, 22] > 0.0  # it spreads...
        assert spread[0, 20, 20] > spread[0, 20, 22] > spread[0, 20, 25]  # ...and decays with distance

    def test_spread_never_creates_influence_and_skips_impassable_cells(self):
        presence = rng(4).random((3, 20, 25)) * 10
        passable = rng(5).random((20, 25)) > 0.2
        spread = influence_process.spread_influence(presence, 2.0, passable, 3.0)
        assert np.all(spread >= 0)
        assert np.all(spread[:, ~passable] == 0)
        assert np.all(spread.sum(axis=(1, 2)) <= presence.sum(axis=(1, 2)) + 1e-9)

    def test_control_follows_threshold(self):
        influence = np.zeros((2, 1, 4))
        influence[:, 0, 0] = [9.0, 1.0]  # share 0.9 -> faction 0
        influence[:, 0, 1] = [5.5, 4.5]  # share 0.55 < 0.6 -> contested
        influence[:, 0, 2] = [0.1, 0.1]  # total below minimum -> nobody's
        influence[:, 0, 3] = [1.0, 3.0]  # share 0.75 -> faction 1
        hostile = np.array([[False, True], [True, False]])
        control, share = influence_process.control_map(influence, hostile, threshold=0.6, min_influence=0.5)
        assert control.tolist() == [[0, world.CONTESTED, world.NONE, 1]]
        np.testing.assert_allclose(share.sum(axis=0)[0, [0, 1, 3]], 1.0)


class TestClashes:
    def test_probability_is_zero_without_tension_and_rises_to_its_ceiling(self):
        tensions = np.linspace(0, 30, 60)
        p = np.array([conflict.clash_probability(t, 0.0, 0.5, 0.05, 2.0, 0.5) for t in tensions])
        assert p[0] == 0.0
        assert np.all(np.diff(p) > 0)
        assert p.max() <= 0.05

    def test_calm_and_posture_scale_the_probability(self):
        assert conflict.clash_probability(3.0, 1.0, 1.0, 0.05, 2.0, 0.5) == 0.0  # full calm: no clash
        calm = [conflict.clash_probability(3.0, c, 0.5, 0.05, 2.0, 0.5) for c in (0.0, 0.5, 0.9)]
        posture = [conflict.clash_probability(3.0, 0.0, x, 0.05, 2.0, 0.5) for x in (0.0, 0.5, 1.0)]
        assert calm[0] > calm[1] > calm[2] > 0
        assert posture[0] < posture[1] < posture[2]

    def test_losses_grow_with_the_other_sides_strength(self):
        def mean_losses(strength_b: float) -> float:
            g = rng(6)
            draws = [conflict.lanchester_casualties(50, 50, 50.0, strength_b, 0.04, g, 0.5, 0.9) for _ in range(4000)]
            return np.mean([losses_a for losses_a, _ in draws])

        losses = [mean_losses(s) for s in (25.0, 50.0, 100.0, 200.0)]
        assert all(a < b for a, b in zip(losses, losses[1:]))
        assert losses[1] == pytest.approx(50 * 0.04, rel=0.05)  # equal forces: lethality per fighter

    def test_no_fight_without_two_sides(self):
        assert conflict.lanchester_casualties(0, 30, 0.0, 30.0, 0.5, rng(), 1.0, 0.9) == (0, 0)
        assert conflict.lanchester_casualties(30, 0, 30.0, 0.0, 0.5, rng(), 1.0, 0.9) == (0, 0)

    def test_killed_share_matches_p_killed(self):
        g = rng(7)
        killed = sum(casualties.split_killed(10, 0.38, g)[0] for _ in range(10_000))
        assert killed / 100_000 == pytest.approx(0.38, abs=0.005)


class TestMediation:
    def test_success_rises_with_aligned_patrons_and_tribal_bridges_and_falls_with_tension(self):
        def p(alignment=0.0, bridge=0.0, tension=0.0):
            return mediation.meeting_success_probability(0.2, alignment, bridge, tension, 2.0, 1.0, 0.5)

        assert p() == pytest.approx(0.2)
        assert p(alignment=-0.5) < p() < p(alignment=0.5) < p(alignment=1.0)
        assert p(bridge=0.2) < p(bridge=0.8)
        assert p(tension=0.5) > p(tension=3.0)

    def test_a_base_chance_of_0_or_1_is_not_moved_by_any_driver(self):
        """The drivers multiply the odds: odds 0 (never) and infinite odds (always) stay so, weights at their limits."""
        for drivers in [(1.0, 1.0, 0.0), (1.0, 1.0, -5.0), (-1.0, 0.0, 10.0), (0.0, 0.0, 0.0)]:
            args = (*drivers, 50.0, 50.0, 50.0)
            assert mediation.meeting_success_probability(0.0, *args, neutral_venue_bonus=50.0) == 0.0
            assert mediation.meeting_success_probability(1.0, *args) == 1.0
        # anything inside can move: the smallest chance rises with aligned patrons
        weights = (0.0, 0.0, 0.0, 2.0, 1.0, 0.5)
        assert 0.0 < mediation.meeting_success_probability(1e-12, *weights) < mediation.meeting_success_probability(
            1e-12, 1.0, *weights[1:]
        )

    def test_logit_and_expit_are_scipys_and_inverse_to_each_other(self):
        """The written-out logistic pair gives scipy.special's numbers (bit for bit on SciPy 1.17), ends included."""
        from scipy import special

        p = np.concatenate([np.random.default_rng(7).random(20_000), [1e-9, 0.3, 0.65, 0.5, 1 - 1e-9]])
        z = np.concatenate([np.random.default_rng(8).normal(0.0, 8.0, 20_000), [0.0, -50.0, 50.0, -800.0, 800.0]])
        ours_logit = np.array([compiled.logit(float(x)) for x in p])
        ours_expit = np.array([compiled.expit(float(x)) for x in z])
        # scipy's formula may change between versions: within 2 ulps whatever the version.
        np.testing.assert_array_max_ulp(ours_logit, special.logit(p), maxulp=2)
        np.testing.assert_array_max_ulp(ours_expit, special.expit(z), maxulp=2)
        assert compiled.expit(-800.0) == 0.0 and compiled.expit(800.0) == 1.0  # no overflow error
        assert np.all(np.abs(np.array([compiled.expit(x) for x in ours_logit]) - p) <= 1e-12)
        assert all(compiled.logit(a) < compiled.logit(b) for a, b in zip(np.sort(p), np.sort(p)[1:]) if a < b)

    def test_calm_decays_by_half_each_half_life(self):
        assert mediation.calm_after_agreement(0, 15) == 1.0
        assert mediation.calm_after_agreement(15, 15) == pytest.approx(0.5)
        assert mediation.calm_after_agreement(45, 15) == pytest.approx(0.125)
        assert mediation.calm_after_agreement(np.inf, 15) == 0.0  # never agreed: no calm
        values = [mediation.calm_after_agreement(d, 15) for d in range(0, 120, 5)]
        assert all(a > b for a, b in zip(values, values[1:]))

    def test_tribal_bridge_is_high_only_for_leaders_tied_to_both(self):
        split = np.array([[0.5, 0.5, 0.0]])
        one_sided = np.array([[1.0, 0.0, 0.0]])
        assert mediation.tribal_bridge(split, 0, 1) == pytest.approx(1.0)
        assert mediation.tribal_bridge(one_sided, 0, 1) == 0.0


class TestTribalAlignment:
    def test_stays_on_the_simplex_and_moves_toward_the_payer(self):
        alignment = np.array([[0.5, 0.5], [0.2, 0.8]])
        pull = np.array([[2.0, 0.0], [2.0, 0.0]])
        new = tribal_politics.update_alignment(alignment, pull, np.array([0.1, 0.1]))
        np.testing.assert_allclose(new.sum(axis=1), 1.0)
        assert np.all(new >= 0)
        assert np.all(new[:, 0] > alignment[:, 0])
        bigger = tribal_politics.update_alignment(alignment, pull * 2, np.array([0.1, 0.1]))
        assert np.all(bigger[:, 0] > new[:, 0])  # more pull, more movement

    def test_excluded_faction_gets_no_weight(self):
        pull = np.array([[0.0, 1.0, -np.inf]])
        new = tribal_politics.update_alignment(np.array([[0.4, 0.6, 0.0]]), pull, np.array([1.0]))
        assert new[0, 2] == 0.0


class TestInsurgency:
    def test_growth_is_monotone_in_clashes_and_contested_ground_and_bounded(self):
        grow = lambda clashes, contested, cells=10.0: insurgency.insurgent_growth(  # noqa: E731
            cells, clashes, contested, 0.0, 0.3, 0.002, 0.01, 200.0
        )
        by_clashes = [grow(c, 0) for c in range(0, 20)]
        by_contested = [grow(0, n) for n in range(0, 2000, 100)]
        assert all(a < b for a, b in zip(by_clashes, by_clashes[1:]))
        assert all(a < b for a, b in zip(by_contested, by_contested[1:]))
        assert grow(10_000, 10_000) == 200.0
        assert grow(0, 0, cells=0.0) == 0.0
        assert grow(0, 0) < 10.0  # without rivalry the cells wither


def test_a_neutral_venue_raises_the_chance_of_agreement():
    args = (0.2, 0.0, 0.3, 1.0, 2.0, 1.0, 0.5)
    p_neutral = mediation.meeting_success_probability(*args, neutral_venue_bonus=0.3)
    assert p_neutral > mediation.meeting_success_probability(*args)
