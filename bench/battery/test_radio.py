"""Hand-computed cases for the radio state machine (bench/battery/radio.py)."""
import math

import pytest

from battery import radio as R

# Round numbers so every expectation can be checked by hand.
SIMPLE = R.RadioParams(name="simple", t_pro=1.0, p_pro=2.0, t_active=0.5, p_active=3.0,
                       t_tail=10.0, p_tail=1.0, p_idle=0.0, alpha_up=0.0, alpha_down=0.0)


def test_no_packets_no_energy():
    r = R.energy([], SIMPLE)
    assert r.energy_j == 0 and r.active_s == 0 and r.promotions == 0


def test_single_packet():
    # promotion [0,1] at 2 W; continuous [1,1.5] at 3 W; tail (1.5,11] at 1 W
    r = R.energy([(0.0, 100, "tx")], SIMPLE)
    assert r.promotions == 1
    assert r.periods == [(0.0, 11.0)]
    assert r.active_s == pytest.approx(11.0)
    assert r.continuous_s == pytest.approx(0.5)
    assert r.tail_s == pytest.approx(9.5)
    assert r.energy_j == pytest.approx(1 * 2 + 0.5 * 3 + 9.5 * 1)   # 13.0


def test_second_packet_inside_tail_extends_without_promotion():
    # packets at 0 and 5: continuous [1,1.5] and [5,5.5], idle at 15
    r = R.energy([(0.0, 100, "tx"), (5.0, 100, "rx")], SIMPLE)
    assert r.promotions == 1
    assert r.active_s == pytest.approx(15.0)
    assert r.continuous_s == pytest.approx(1.0)
    assert r.energy_j == pytest.approx(2 + 1.0 * 3 + 13.0 * 1)       # 18.0


def test_packets_after_tail_pay_a_second_promotion():
    r = R.energy([(0.0, 100, "tx"), (20.0, 100, "tx")], SIMPLE)
    assert r.promotions == 2
    assert r.periods == [(0.0, 11.0), (20.0, 31.0)]
    assert r.energy_j == pytest.approx(26.0)


def test_packet_during_promotion_waits_for_it():
    r = R.energy([(0.0, 100, "tx"), (0.5, 100, "tx")], SIMPLE)
    assert r.promotions == 1
    assert r.periods == [(0.0, 11.0)]
    assert r.energy_j == pytest.approx(13.0)


def test_packet_exactly_at_tail_end_keeps_radio_connected():
    r = R.energy([(0.0, 100, "tx"), (11.0, 100, "tx")], SIMPLE)
    assert r.promotions == 1
    assert r.periods == [(0.0, 21.0)]
    # promotion 1 s, continuous 0.5 + 0.5 s, tail 21 - 2 = 19 s
    assert r.energy_j == pytest.approx(2 + 3 + 19)


def test_unsorted_input_is_sorted():
    a = R.energy([(5.0, 1, "tx"), (0.0, 1, "tx")], SIMPLE)
    b = R.energy([(0.0, 1, "tx"), (5.0, 1, "tx")], SIMPLE)
    assert a.energy_j == pytest.approx(b.energy_j)


def test_idle_baseline_is_subtracted():
    p = R.RadioParams(**{**SIMPLE.__dict__, "p_idle": 0.1})
    r = R.energy([(0.0, 100, "tx")], p)
    assert r.energy_j == pytest.approx(13.0 - 0.1 * 11.0)


def test_throughput_term():
    p = R.RadioParams(**{**SIMPLE.__dict__, "alpha_up": 1.0, "alpha_down": 0.5})
    # 125000 bytes = 1 Mbit: +1 J uplink, +0.5 J downlink
    r = R.energy([(0.0, 125000, "tx"), (0.1, 125000, "rx")], p)
    assert r.data_j == pytest.approx(1.5)
    assert r.energy_j == pytest.approx(13.0 + 1.5)


def test_marginal_energy_of_dns_inside_app_activity_is_zero():
    app = [(0.0, 1000, "tx")]
    dns = [(1.0, 200, "tx")]        # inside the app's continuous/tail period
    assert R.marginal(dns, app, SIMPLE) == pytest.approx(0.0)
    # a packet 30 s later is a fresh wake-up: full cost
    assert R.marginal([(30.0, 200, "tx")], app, SIMPLE) == pytest.approx(13.0)


def test_lte_single_small_packet_matches_hand_computation():
    p = R.LTE
    r = R.energy([(0.0, 60, "tx")], p)
    assert r.promotions == 1
    assert r.active_s == pytest.approx(p.t_pro + p.t_tail)
    expect = (p.t_pro * (p.p_pro - p.p_idle) + p.t_active * (p.p_active - p.p_idle)
              + (p.t_tail - p.t_active) * (p.p_tail - p.p_idle) + p.alpha_up * 60 * 8 / 1e6)
    assert r.energy_j == pytest.approx(expect)
    # ~0.26*1.21 + 0.1*1.29 + 11.48*1.06 - idle ~= 12.4 J per isolated wake-up
    assert 12.0 < r.energy_j < 12.8


def test_wifi_isolated_packet_is_cheap():
    r = R.energy([(0.0, 60, "tx")], R.WIFI)
    assert r.active_s == pytest.approx(R.WIFI.t_pro + R.WIFI.t_tail)
    assert r.energy_j < 0.05
    assert not math.isnan(r.energy_j)
