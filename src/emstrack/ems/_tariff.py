"""Household tariff built from day-ahead wholesale prices.

Import price per kWh = max(0, (wholesale + markup) x (1 + VAT)), with ``markup`` covering network
fees, levies and taxes other than VAT (German households: roughly 0.20-0.30 EUR/kWh). With the
default :class:`~emstrack.schemas.TariffSettings` (0.22 EUR/kWh, 19 % VAT) the 2016 hours of the
shipped sample (about 0.02 EUR/kWh wholesale) cost 0.29 EUR/kWh on average - the German household
average of 2016; a markup of 0.26 EUR/kWh gives today's 0.30-0.40 EUR/kWh range.

Negative wholesale hours lower the import price like any other hour - VAT is charged on the whole
sum - but the import price never goes below zero: a household tariff does not pay for consumption.
(With realistic markups the floor never binds; the model handles hours where importing is cheaper
than the feed-in tariff separately, see ``emstrack.ems._model``.)

Export is paid a fixed feed-in tariff per kWh, as under the German EEG, independent of the hour.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from emstrack.schemas import TariffSettings

FloatArray = npt.NDArray[np.float64]


def import_prices(wholesale_eur_per_kwh: npt.ArrayLike, tariff: TariffSettings) -> FloatArray:
    """Household import price per kWh for each wholesale price.

    Args:
        wholesale_eur_per_kwh: Day-ahead prices [EUR/kWh]; may be negative.
        tariff: Markup, VAT rate and feed-in tariff.

    Returns:
        ``max(0, (wholesale + markup) * (1 + vat_rate))`` element-wise [EUR/kWh].

    """
    wholesale = np.asarray(wholesale_eur_per_kwh, dtype=np.float64)
    gross = (wholesale + tariff.markup_eur_per_kwh) * (1.0 + tariff.vat_rate)
    return np.maximum(gross, 0.0)


def feed_in_price(tariff: TariffSettings) -> float:
    """Return the fixed remuneration per exported kWh [EUR/kWh]."""
    return float(tariff.feed_in_eur_per_kwh)
