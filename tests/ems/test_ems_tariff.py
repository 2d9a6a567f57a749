"""Household import tariff from wholesale prices."""

from __future__ import annotations

import numpy as np
import pytest

from emstrack.ems import feed_in_price, import_prices, load_household_data
from emstrack.schemas import TariffSettings


class TestImportPrice:
    def test_markup_and_vat_apply_to_wholesale(self) -> None:
        """(0.03 + 0.22) x 1.19 = 0.2975 EUR/kWh with the default tariff."""
        assert import_prices([0.03], TariffSettings())[0] == pytest.approx(0.2975)

    def test_negative_wholesale_lowers_the_price_including_vat(self) -> None:
        """-0.08 EUR/kWh wholesale gives (0.14) x 1.19 = 0.1666 EUR/kWh."""
        assert import_prices([-0.08], TariffSettings())[0] == pytest.approx(0.1666)

    def test_price_never_goes_below_zero(self) -> None:
        """Without markup, a negative wholesale hour costs 0, not a payment."""
        prices = import_prices([-0.05, 0.02], TariffSettings(markup_eur_per_kwh=0.0))
        np.testing.assert_allclose(prices, [0.0, 0.0238])

    def test_sample_prices_are_household_prices_not_wholesale(self) -> None:
        """The 2016 sample averages about 0.29 EUR/kWh by default, 0.33 with a 0.26 markup."""
        wholesale = np.concatenate(
            [d.hourly["wholesale_price_eur_per_kwh"] for d in load_household_data().values()]
        )
        assert import_prices(wholesale, TariffSettings()).mean() == pytest.approx(0.286, abs=0.005)
        today = import_prices(wholesale, TariffSettings(markup_eur_per_kwh=0.26)).mean()
        assert 0.30 <= today <= 0.40


class TestFeedIn:
    def test_feed_in_is_the_fixed_tariff(self) -> None:
        """The feed-in price is the configured constant."""
        assert feed_in_price(TariffSettings(feed_in_eur_per_kwh=0.07)) == 0.07
