"""ogan_ign/cli.py: flags defined from settings dataclasses, parsed back into them,
one-line errors (exit status 2) and --help grouped by job."""

import ast
import dataclasses
import os
import re
import subprocess
import sys
from typing import Optional

from absl import flags
import pytest
import tensorflow as tf

from ogan_ign import cli, gan, ign, networks, ogan, training
from ogan_ign.settings import hparam
from test_run_safety import exit_of

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Run:
    """A script's settings: one field of each kind a flag can have."""
    width: int = hparam(64, "channels")
    weight: float = hparam(0.5, "a weight")
    noise: str = hparam("gaussian", "the noise")
    sharp: bool = hparam(False, "sharper")
    clamp: Optional[float] = hparam(1.5, "a clamp")
    limit: Optional[int] = hparam(None, "a limit")
    kind: Optional[str] = hparam("qp", "a kind", choices=("qp", "gp"))


def script_flags(**run_defaults):
    """Fresh flags as a training script defines them."""
    values = flags.FlagValues()
    cli.define_common_flags(values, dataset="fashion_mnist", out_dir="runs/x", lr=2e-4)
    cli.define_settings_flags(Run, values, **run_defaults)
    return values


class DefineFlagsTest(tf.test.TestCase):

    def test_a_flag_per_field_with_its_kind_default_and_help(self):
        values = script_flags()
        self.assertEqual(values["width"].value, 64)
        self.assertIsInstance(values["width"].parser, flags.IntegerParser)
        self.assertIsInstance(values["weight"].parser, flags.FloatParser)
        self.assertTrue(values["sharp"].boolean)
        self.assertEqual(values["noise"].help, "the noise")
        # Optional fields take 'none': a string flag, 'none' when the default is None.
        self.assertEqual(values["limit"].value, "none")
        self.assertEqual(values["clamp"].value, "1.5")
        self.assertEqual(values["clamp"].help, "a clamp ('none': unset)")
        # Every Config field but the model's settings is a common flag.
        names = {f.name for f in dataclasses.fields(training.Config)} - {"model"}
        self.assertContainsSubset(names, set(values))

    def test_a_script_default_overrides_the_field_default(self):
        values = script_flags(noise="fourier", limit=3)
        self.assertEqual(values["noise"].default, "fourier")
        self.assertEqual(values["limit"].value, "3")
        self.assertEqual(values["lr"].default, 2e-4)
        self.assertEqual(values["batch_size"].default, training.Config.batch_size)

    def test_a_default_for_no_field_is_refused(self):
        with self.assertRaisesRegex(TypeError, "Run has no field nosie"):
            cli.define_settings_flags(Run, flags.FlagValues(), nosie="fourier")

    def test_excluded_fields_get_no_flag(self):
        values = flags.FlagValues()
        cli.define_settings_flags(Run, values, exclude=("sharp", "limit"))
        self.assertNotIn("sharp", values)
        self.assertIn("width", values)

    def test_a_field_with_choices_refuses_others(self):
        @dataclasses.dataclass(frozen=True)
        class Picked:
            kind: str = hparam("a", "a kind", choices=("a", "b"))

        values = flags.FlagValues()
        cli.define_settings_flags(Picked, values)
        values(["prog", "--kind=b"])
        self.assertEqual(values["kind"].value, "b")
        with self.assertRaisesRegex(flags.Error, "should be one of <a|b>"):
            values(["prog", "--kind=c"])

    def test_included_fields_alone_get_flags(self):
        values = flags.FlagValues()
        cli.define_settings_flags(Run, values, include=("width",))
        self.assertIn("width", values)
        self.assertNotIn("sharp", values)
        self.assertNotIn("noise", values)


class ParseTest(tf.test.TestCase):

    def parsed(self, *argv, **run_defaults):
        values = script_flags(**run_defaults)
        values(["prog", *argv])
        return values

    def test_flags_become_the_settings_and_the_config(self):
        values = self.parsed("--width=8", "--nosharp", "--limit=4", "--clamp=none",
                             "--channels=1", "--steps=7", sharp=True)
        run = cli.settings_from_flags(Run, values)
        self.assertEqual(run, Run(width=8, sharp=False, limit=4, clamp=None))
        config = cli.config_from_flags(values, run)
        self.assertEqual((config.dataset, config.out_dir, config.lr), ("fashion_mnist", "runs/x",
                                                                       2e-4))
        self.assertEqual((config.channels, config.steps, config.data_dir), (1, 7, None))
        self.assertIs(config.model, run)

    def test_every_word_for_unset(self):
        for word in ("none", "None", "OFF", "", " none "):
            with self.subTest(word=word):
                run = cli.settings_from_flags(Run, self.parsed(f"--clamp={word}"))
                self.assertIsNone(run.clamp)

    def test_a_bad_optional_value_is_a_config_error(self):
        with self.assertRaisesRegex(training.ConfigError,
                                    r"^--limit must be an integer or 'none', got '2\.5'$"):
            cli.settings_from_flags(Run, self.parsed("--limit=2.5"))
        with self.assertRaisesRegex(training.ConfigError,
                                    r"^--kind must be one of qp, gp or 'none', got 'qq'$"):
            cli.settings_from_flags(Run, self.parsed("--kind=qq"))
        self.assertIsNone(cli.settings_from_flags(Run, self.parsed("--kind=none")).kind)
        self.assertEqual(cli.settings_from_flags(Run, self.parsed("--kind=gp")).kind, "gp")

    def test_the_gan_losses_are_checked_when_parsed(self):
        values = flags.FlagValues()
        cli.define_settings_flags(gan.GANSettings, values)
        with self.assertRaises(flags.IllegalFlagValueError):
            values(["prog", "--objective=lsgan"])
        values = flags.FlagValues()
        cli.define_settings_flags(gan.GANSettings, values)
        values(["prog", "--penalty=wgp"])
        with self.assertRaisesRegex(training.ConfigError, "--penalty must be one of qp, gp"):
            cli.settings_from_flags(gan.GANSettings, values)


    def test_a_minimum_is_checked_when_parsed(self):
        values = flags.FlagValues()
        cli.define_settings_flags(ogan.OGANSettings, values)
        values(["prog", "--recon_weight=0", "--encoder_corr_weight=1.5"])
        self.assertEqual(cli.settings_from_flags(ogan.OGANSettings, values).recon_weight, 0.0)
        for flag in ("--recon_weight=-1", "--encoder_corr_weight=-0.5",
                     "--encoder_recon_weight=-2", "--real_corr_weight=-1", "--recon_pool=0"):
            values = flags.FlagValues()
            cli.define_settings_flags(ogan.OGANSettings, values)
            with self.subTest(flag=flag), self.assertRaises(flags.IllegalFlagValueError):
                values(["prog", flag])


class ErrorTest(tf.test.TestCase):

    def assert_one_line(self, stderr, expected):
        self.assertEqual(stderr.count("\n"), 1, stderr)
        self.assertEqual(stderr.strip(), expected)

    def test_main_config_errors_are_one_line_exit_2(self):
        values = script_flags()
        values(["prog", "--clamp=wide"])
        status, stdout, stderr = exit_of(lambda: cli.main_config(["prog"], Run, values))
        self.assertEqual((status, stdout), (2, ""))
        self.assert_one_line(stderr, "error: --clamp must be a number or 'none', got 'wide'")
        values = script_flags()
        values(["prog"])
        status, _, stderr = exit_of(lambda: cli.main_config(["prog", "extra"], Run, values))
        self.assertEqual(status, 2)
        self.assert_one_line(stderr, "error: unexpected arguments: extra (flags are written "
                                     "--name=value)")

    def test_flag_syntax_errors_are_one_line_exit_2(self):
        status, stdout, stderr = exit_of(lambda: cli.parse_flags(["prog", "--width=wide"],
                                                                 script_flags()))
        self.assertEqual((status, stdout), (2, ""))
        self.assertTrue(stderr.startswith("error: flag --width=wide: "), stderr)
        self.assertEqual(stderr.count("\n"), 1, stderr)

    def test_user_errors_exit_statuses(self):
        def raising(error):
            def call():
                with cli.user_errors():
                    raise error
            return call

        status, _, stderr = exit_of(raising(training.ConfigError("bad\n  value")))
        self.assertEqual(status, 2)
        self.assert_one_line(stderr, "error: bad value")
        status, _, stderr = exit_of(raising(training.TrainingDiverged("loss is NaN")))
        self.assertEqual(status, 3)
        self.assert_one_line(stderr, "error: loss is NaN")
        with self.assertRaises(KeyError):  # not a user's mistake: the traceback stays
            raising(KeyError("x"))()

    def test_one_line(self):
        self.assertEqual(cli.one_line(ValueError("a\n   b\tc ")), "a b c")
        self.assertEqual(cli.one_line(ValueError()), "ValueError")


class HelpTest(tf.test.TestCase):

    def help_of(self, *argv, values=None):
        values = values or script_flags()
        return exit_of(lambda: cli.parse_flags(["prog", *argv], values))

    def headings(self, text):
        return re.findall(r"^(\w+):$", text, flags=re.MULTILINE)

    def test_help_words_print_grouped_help_and_exit_0(self):
        for word in ("--help", "-h", "--helpshort", "-help", "-?"):
            with self.subTest(word=word):
                status, stdout, stderr = self.help_of("--width=3", word)
                self.assertEqual((status, stderr), (0, ""))
                self.assertEqual(self.headings(stdout),
                                 ["data", "model", "training", "devices", "output"])

    def test_a_value_or_an_argument_after_double_dash_is_no_help_word(self):
        status, _, _ = self.help_of("--noise", "h", "--", "--help")
        self.assertIsNone(status)

    def test_each_flag_under_its_group_the_model_under_model(self):
        text = cli.help_text(script_flags(), doc="Trains a model.\n")
        self.assertTrue(text.startswith("Trains a model.\n\ndata:\n  --dataset: "), text)
        sections = dict(re.findall(r"^(\w+):\n((?:  .*\n?)+)", text, flags=re.MULTILINE))
        names = {group: re.findall(r"^  --(?:\[no\])?(\w+):", body, flags=re.MULTILINE)
                 for group, body in sections.items()}
        self.assertEqual(names["model"], [f.name for f in dataclasses.fields(Run)])
        for group, listed in names.items():
            if group != "model":
                self.assertEqual(listed, [n for n in cli.HELP_GROUPS[group] if n in listed])
        config = {f.name for f in dataclasses.fields(training.Config)} - {"model"}
        self.assertCountEqual(sum((v for k, v in names.items() if k != "model"), []), config)
        self.assertIn("  --[no]sharp: sharper\n    (default: 'false')", text)
        self.assertIn("    (default: 'fashion_mnist')", text)  # the script's own default

    def test_only_the_scripts_flags_are_listed(self):
        values = script_flags()
        flags.DEFINE_integer("probe_examples", 10, "a probe", flag_values=values,
                             module_name="train_x.py")
        flags.DEFINE_integer("verbosity", 0, "absl's", flag_values=values,
                             module_name="absl.logging")
        flags.DEFINE_integer("tt_check_filter", 0, "TensorFlow's", flag_values=values,
                             module_name="tensorflow.python.tpu")
        own = {flag.name for flag in cli.script_flags(values, script="train_x.py")}
        self.assertIn("probe_examples", own)
        self.assertNotIn("verbosity", own)
        self.assertNotIn("tt_check_filter", own)

    def test_a_flag_has_one_group(self):
        names = [name for group in cli.HELP_GROUPS.values() for name in group]
        self.assertEqual(len(names), len(set(names)))


def run_fields(script):
    """The fields of a script's settings class (`...Run`), read from its source: the
    library settings it extends (the last base's first, as dataclasses order
    them), then its own."""
    with open(os.path.join(REPO, script)) as f:
        tree = ast.parse(f.read())
    run = next(node for node in tree.body
               if isinstance(node, ast.ClassDef) and node.name.endswith("Run"))
    library = {cls.__name__: cls for cls in (gan.GANSettings, ogan.OGANSettings, ign.IGNSettings,
                                            networks.DCGANChoice)}
    inherited = [f.name for base in reversed(run.bases)
                 for f in dataclasses.fields(library[ast.unparse(base).split(".")[-1]])]
    return inherited + [node.target.id for node in run.body if isinstance(node, ast.AnnAssign)]


@pytest.mark.slow
class ScriptHelpTest(tf.test.TestCase):
    """The scripts' --help: exit 0, grouped; the model group is their settings' fields."""

    def test_scripts(self):
        env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
        for script, word, extra in (("train_ign.py", "--help", ["evaluation"]),
                                    ("train_ogan.py", "-h", ["evaluation"]),
                                    ("train_gan.py", "--helpshort", [])):
            with self.subTest(script=script):
                done = subprocess.run([sys.executable, script, word], cwd=REPO, env=env,
                                      capture_output=True, text=True, timeout=300)
                self.assertEqual(done.returncode, 0, done.stderr[-2000:])
                headings = re.findall(r"^(\w+):$", done.stdout, flags=re.MULTILINE)
                self.assertEqual(headings,
                                 ["data", "model", "training", "devices", "output"] + extra)
                model = done.stdout.split("\nmodel:\n")[1].split("\n\n")[0]
                listed = re.findall(r"^  --(?:\[no\])?(\w+):", model, flags=re.MULTILINE)
                self.assertEqual(listed, run_fields(script))
                self.assertNotIn("--verbosity", done.stdout)  # absl's: --helpfull
        done = subprocess.run([sys.executable, "train_gan.py", "--helpfull"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        self.assertIn("--verbosity", done.stdout)


if __name__ == "__main__":
    tf.test.main()
