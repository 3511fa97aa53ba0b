"""ogan_ign/settings.py: a hyper-parameter's one home (its default and help), and
the model constructors and the driver's Config taking their defaults from it."""

import dataclasses
import inspect
from typing import Optional

import tensorflow as tf

from ogan_ign import evaluation, gan, ign, ogan, training
from ogan_ign.settings import help_of, hparam, subset


@dataclasses.dataclass(frozen=True)
class Small:
    rate: float = hparam(0.5, "a rate")
    name: str = hparam("a", "a name")
    limit: Optional[int] = hparam(None, "a limit")
    plain: int = 3


@dataclasses.dataclass(frozen=True)
class Larger(Small):
    extra: int = hparam(7, "one more")


class HparamTest(tf.test.TestCase):

    def test_a_field_holds_its_default_and_help(self):
        fields = {f.name: f for f in dataclasses.fields(Small)}
        self.assertEqual(Small(), Small(rate=0.5, name="a", limit=None, plain=3))
        self.assertEqual(help_of(fields["rate"]), "a rate")
        self.assertEqual(help_of(fields["limit"]), "a limit")
        self.assertEqual(help_of(fields["plain"]), "plain")  # no help given: its name
        self.assertEqual(Small.rate, 0.5)  # the class attribute a constructor's default reads

    def test_settings_are_frozen(self):
        with self.assertRaises(dataclasses.FrozenInstanceError):
            Small().rate = 1.0  # pylint: disable=assigning-non-slot

    def test_subset_takes_the_fields_of_the_narrower_class(self):
        larger = Larger(rate=0.25, extra=9)
        self.assertEqual(subset(larger, Small),
                         {"rate": 0.25, "name": "a", "limit": None, "plain": 3})
        self.assertEqual(subset(larger, Larger)["extra"], 9)
        self.assertEqual(subset(Small(), Larger), dataclasses.asdict(Small()))


class OneHomeTest(tf.test.TestCase):
    """Every library hyper-parameter has help, and a model's constructor defaults to
    its settings field: the default is written once."""

    def test_every_field_has_help(self):
        for cls in (training.Config, gan.GANSettings, ogan.OGANSettings, ign.IGNSettings,
                    evaluation.ScoreSettings):
            for field in dataclasses.fields(cls):
                # Config.model holds a script's settings; the standing statistics of
                # a scoring are the caller's (training.Config is their flag's home).
                if field.name not in ("model", "standing_stats", "standing_batch"):
                    self.assertIn("help", field.metadata, f"{cls.__name__}.{field.name}")

    def test_constructors_default_to_the_settings(self):
        for model, settings in ((gan.SingleLossGAN, [gan.GANSettings]),
                                (ogan.OGAN, [gan.GANSettings, ogan.OGANSettings]),
                                (ign.IGN, [ign.IGNSettings])):
            parameters = inspect.signature(model.__init__).parameters
            for cls in settings:
                for field in dataclasses.fields(cls):
                    with self.subTest(model=model.__name__, field=field.name):
                        self.assertIn(field.name, parameters)
                        self.assertEqual(parameters[field.name].default, field.default)


if __name__ == "__main__":
    tf.test.main()
