"""The command line behind `run.py`: parse arguments, call `sim`, map outcomes to exit codes.

Exit status: 0 success; 2 bad input (scenario, overrides, arguments, output location),
reported as one line per problem with file, line and key path; 1 an internal error.

Building the parser and parsing the arguments import nothing heavy (numpy, pandas, Mesa,
scipy, matplotlib, pydantic): each command imports what it uses, an option's schema bounds
are read when the option is given, so `run.py --help` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import re
import shlex
import signal
import sys
import textwrap
import traceback
import warnings
from decimal import Decimal
from pathlib import Path
from typing import NoReturn

from sim.interrupts import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated
from sim.paths import DEFAULT_SCENARIO

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away


def _terminate_on_sigterm():
    """Raise `Terminated` on SIGTERM; return the previous handler (False off the main thread).

    Each interrupt is noted (`sim.interrupts.note`), so one Python swallows in a finalizer is
    raised again at the next safe point.
    """
    from sim import interrupts

    def handler(signum, frame):
        raise interrupts.note(Terminated())

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (main() called from a thread): leave signals alone
        return False


def _note_ctrl_c():
    """Note each Ctrl-C (`sim.interrupts.note`) as it is raised; returns the handler to put back, or None.

    Only where SIGINT has Python's own handler (an embedding program's or a test's is left alone).
    """
    from sim import interrupts

    def handler(signum, frame):
        raise interrupts.note(KeyboardInterrupt())

    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        pass
    return None


def exit_on_late_signal(status: int) -> None:
    """After the command has returned `status`: Ctrl-C or SIGTERM while Python shuts down exits at once with it.

    Shutting down (atexit callbacks, a Dask cluster's, the modules' finalizers) takes up to a
    second after the last line is printed; a signal there killed the process silently with the
    signal's status, as if the complete output were not. Worker processes are stopped by then
    (and die with their driver in any case). `run.py` calls this; `main` alone (tests, other
    programs) leaves signals as they were. Ignored signals stay ignored.
    """

    def handler(signum, frame):
        _exit_flushed(status)

    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            if signal.getsignal(number) is not signal.SIG_IGN:
                signal.signal(number, handler)
        except ValueError:  # not the main thread
            return


def finish(status: int) -> NoReturn:
    """End the process with the `status` the command returned, without Python's own teardown.

    What Python's exit does that anyone could see is done first, in its order: wait for the
    threads that are not daemons (`threading._shutdown`, which also stops concurrent.futures'
    pools), run the atexit callbacks (a Dask cluster's close, multiprocessing's children,
    logging, `weakref.finalize`), flush stdout and stderr. What is skipped is the rest:
    clearing every module and unloading native libraries, LLVM's teardown of the compiled
    kernels (`sim.compiled`) above all, about 0.3 s of a 2 s one-year run. multiprocessing's
    own children end the same way (`multiprocessing.process`: `threading._shutdown()`, the
    atexit function, `os._exit`). Every result file is closed (written atomically) before a
    command returns. A Ctrl-C or SIGTERM meanwhile exits at once with `status`
    (`exit_on_late_signal`). `run.py` calls this; `main` alone (tests, other programs) does not.
    """
    import atexit
    import threading

    exit_on_late_signal(status)
    shutdown = getattr(threading, "_shutdown", None)
    run_exit_callbacks = getattr(atexit, "_run_exitfuncs", None)
    if shutdown is None or run_exit_callbacks is None:  # another Python: its own exit, slower
        sys.exit(status)
    shutdown()
    run_exit_callbacks()  # prints a failing callback's traceback itself, as Python's exit does
    _exit_flushed(status)


EXIT_STDOUT_LOST = 120  # what Python's own exit returns when stdout cannot be flushed


def _exit_flushed(status: int) -> NoReturn:
    """Flush stdout and stderr, then end the process at once with `status` (`os._exit`).

    Output still buffered that cannot be written is not lost in silence: a full disk or
    quota says so on one line and exits EXIT_BAD_INPUT, a reader gone away exits
    EXIT_BROKEN_PIPE, another error EXIT_STDOUT_LOST (Python's own 120), unless the command
    has already failed with a status of its own.
    """
    try:
        sys.stdout.flush()
    except ValueError:  # stdout closed by the program: nothing buffered to lose
        pass
    except OSError as error:
        if error.errno == errno.EPIPE:
            lost = EXIT_BROKEN_PIPE  # quietly, as a command killed by SIGPIPE
        else:
            lost = EXIT_BAD_INPUT if error.errno in _NO_ROOM else EXIT_STDOUT_LOST
            try:
                print(f"error: cannot write stdout: {error.strerror or error}", file=sys.stderr)
            except (OSError, ValueError):
                pass
        status = status or lost
    try:
        sys.stderr.flush()
    except (OSError, ValueError):  # nothing more can be said
        pass
    os._exit(status)


# A decimal number as the scenario loader reads one (ASCII digits, no '_'): float() alone also
# takes `1_0`, `infinity` and other scripts' digits, which a file or --set would refuse.
_DECIMAL_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def _decimal(text: str) -> float:
    """A number written in decimals (`0.5`, `10`, `1e-3`).

    Raises:
        argparse.ArgumentTypeError: anything else (the text echoed cut to 60 characters).
    """
    plain = text.strip()
    if not _DECIMAL_NUMBER.fullmatch(plain):
        raise argparse.ArgumentTypeError(f"expected a number written in decimals, got {text[:60]!r}")
    return float(plain)


def _positive_float(text: str) -> float:
    value = _decimal(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text[:60]}")
    return value


def _match_km(text: str) -> float:
    """compare-events' radius: a finite number > 0 and at most `sim.acled.MAX_MATCH_KM` (20,000 km)."""
    value = _positive_float(text)
    from sim.acled import MAX_MATCH_KM  # here: only compare-events reads it, and it imports sim.acled anyway

    if value > MAX_MATCH_KM:
        limit = f"{MAX_MATCH_KM:,.0f} km (half round the Earth)"
        raise argparse.ArgumentTypeError(f"must be at most {limit}, got {text[:60]}")
    return value


# A whole number written with an exponent and no decimal point (1e3, 2E+5), as the scenario
# loader reads it in files and --set (sim.yaml_source), so `--steps 1e3` means what `--set steps=1e3` does.
# Any exponent: `1e100` is a number out of range as `1e61` is, not "not a whole number".
_EXPONENT_INT = re.compile(r"([+-]?)([0-9]+)[eE]\+?([0-9]+)")
# Digits of the largest whole number an option's value is built as (Python's limit for reading an
# int from decimals, sys.int_info.default_max_str_digits): `1e999999999`, a billion digits, would take
# minutes and hundreds of MB. Beyond, it is out of every option's range: read as inf, refused by it.
MAX_WHOLE_DIGITS = 4300
# What the loader refuses in files and --set (sim.yaml_source._LEADING_ZERO, `_`: YAML 1.1 reads
# 0150 as octal 104, 1_000 as 1000, YAML 1.2 reads text), refused in options too so that
# `--steps 0150` cannot mean 150 where `--set steps=0150` is an error. Own patterns: parsing
# the arguments imports no YAML (sim.cli's docstring).
_DIGITS = re.compile(r"[+-]?[0-9]+")  # ASCII only, as YAML's; int() also takes '_' and other scripts' digits
_LEADING_ZERO = re.compile(r"[+-]?0[0-9]+")
# Hex reads the same in YAML 1.1 and 1.2 (`steps: 0x96` is 150), so options take it as files do;
# octal 0o.., binary 0b.. and signed hex read as a number in one of them only, and are refused.
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_OTHER_BASE = re.compile(r"([+-]?)0([ob])([0-9a-fA-F]+)|([+-])0x([0-9a-fA-F]+)")


def path_argument(text: str) -> Path:
    """A path from the command line; an empty one is refused (Path('') is the current directory).

    Raises:
        argparse.ArgumentTypeError: an empty or blank path (`--out ''`, an unset shell variable).
    """
    if not text.strip():
        raise argparse.ArgumentTypeError(f"an empty path ({text!r}) is refused: it would mean the current directory")
    return Path(text)


def dask_address(text: str) -> str:
    """A Dask scheduler address or "local" (any case), from the command line.

    Raises:
        argparse.ArgumentTypeError: an empty or blank one (an unset shell variable), which ran
            the job without Dask as if --dask had not been given.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError(f"an empty address ({text!r}): give local or one such as tcp://host:8786")
    return "local" if text.strip().lower() == "local" else text


class Respelled(argparse.ArgumentTypeError):
    """`whole_number`'s refusal of a whole number written otherwise than a scenario file writes one.

    A leading zero (`0150`), a `_` (`1_000`), another base (`0o226`) or a decimal point (`1.5e3`).
    `meant` is the number (an int; inf or -inf past `MAX_WHOLE_DIGITS`, for which no hint can be
    given). The message's hint ("write 150") suits an option whose range holds the number; an
    option with a range (`bounded_int`) refuses one outside it as any number outside the range,
    as it refuses 0 and 1e400 ("must be between 1 and 100,000 (as steps), got 00"; "..., got
    1.5e9 (= 1,500,000,000)"), so that no hint names a value the option would refuse.
    """

    def __init__(self, message: str, meant: int | float):
        super().__init__(message)
        self.meant = meant


def _decimal_whole(plain: str) -> int | float | None:
    """The whole number a decimal with a point or exponent writes (1.5e3: 1500), else None (1.5, 1e-400)."""
    number = Decimal(plain)
    if number != number.to_integral_value():
        return None
    if number.adjusted() >= MAX_WHOLE_DIGITS:  # 1.5e400 is whole, but too long to build
        return -math.inf if number < 0 else math.inf
    return int(number)


def _digits_value(plain: str) -> int | float:
    """The whole number that ASCII digits with an optional sign write; inf (-inf) past `MAX_WHOLE_DIGITS` digits."""
    digits = plain.lstrip("+-").lstrip("0")
    if len(digits) > MAX_WHOLE_DIGITS:
        return -math.inf if plain.startswith("-") else math.inf
    return int(("-" if plain.startswith("-") else "") + (digits or "0"))


def _spelt(meant: int | float) -> str:
    """A number meant, for a hint: its digits, cut to 60 characters (a hint is only given for one in a range)."""
    return str(meant)[:60] if isinstance(meant, int) else "its digits alone"


def whole_number(text: str) -> int | float:
    """A whole number from the command line (digits, `1e3`, hex `0x96`), read as in a scenario file.

    Returns:
        The number (an int); one of more than `MAX_WHOLE_DIGITS` decimal digits (written so, or
        with an exponent: `1e5000`) is not built, and reads as inf (-inf if negative), which the
        callers' ranges (`bounded_int`, `_seed`) refuse with their usual message.

    Raises:
        argparse.ArgumentTypeError: anything else (the text is echoed as `given_as` shows it).
        Respelled: a leading zero (`0150`), a `_` (`1_000`), octal `0o226`, binary `0b1`, signed
            hex `-0x1F` or a decimal point (`1.5e3`), with the spelling meant, as the loader says
            it for `--set`; `bounded_int` says its range instead when the number is outside it.
    """
    plain = text.strip()
    as_loaded = "as in a scenario file and --set (YAML 1.1 and 1.2 read it differently)"
    if _LEADING_ZERO.fullmatch(plain):
        meant = _digits_value(plain)  # -00 is 0, as the loader says it for --set (no "write -0")
        raise Respelled(f"{plain[:60]}: a leading zero is refused, {as_loaded}; write {_spelt(meant)}", meant)
    if "_" in plain and _DIGITS.fullmatch(plain.replace("_", "")):
        meant = _digits_value(plain.replace("_", ""))
        raise Respelled(f"{plain[:60]}: '_' is refused, {as_loaded}; write {_spelt(meant)}", meant)
    if based := _OTHER_BASE.fullmatch(plain):
        sign, letter, digits, hex_sign, hex_digits = based.groups()
        try:
            value = int(digits, {"o": 8, "b": 2}[letter]) if letter else int(hex_digits, 16)
        except ValueError:  # not digits of that base (0o9): nothing to suggest
            pass
        else:
            meant = -value if (sign or hex_sign) == "-" else value
            raise Respelled(f"{plain[:60]}: this base is refused, {as_loaded}; write {_spelt(meant)}", meant)
    if _HEX.fullmatch(plain):
        return int(plain, 16)  # any length: a power-of-two base has no digit limit, and builds fast
    exponent = _EXPONENT_INT.fullmatch(plain)
    if exponent or _DIGITS.fullmatch(plain):
        if exponent:
            sign, digits, power = exponent.groups()
        else:
            sign, digits, power = plain[0] if plain[0] in "+-" else "", plain.lstrip("+-"), ""
        digits, power = digits.lstrip("0"), power.lstrip("0")
        if not digits:  # 0, 0e400
            return 0
        if len(power) > len(str(MAX_WHOLE_DIGITS)) or len(digits) + int(power or 0) > MAX_WHOLE_DIGITS:
            return -math.inf if sign == "-" else math.inf
        return int(sign + digits) * 10 ** int(power or 0)
    hint = ""
    if _DECIMAL_NUMBER.fullmatch(plain):  # 1.5e3: the whole number 1500, but not as a scenario file writes one
        from sim.yaml_source import no_decimal_point  # here: parsing good arguments imports no YAML

        value = float(plain)
        # 1e-400 reads as 0.0 but is not zero: no hint to write 0
        underflow = value == 0 and any(c in "123456789" for c in plain.lower().partition("e")[0])
        why = None if underflow else no_decimal_point(value)
        hint = f" ({why})" if why else ""
        if not underflow and (meant := _decimal_whole(plain)) is not None:  # 1.5e3; 1.5e400 (beyond a float): no hint
            raise Respelled(f"expected a whole number, got {given_as(text, quoted=True)}{hint}", meant)
    raise argparse.ArgumentTypeError(f"expected a whole number, got {given_as(text, quoted=True)}{hint}")


ECHO_CHARACTERS = 60  # a refused argument is echoed up to this many characters


def given_as(text: str, value: int | float | None = None, quoted: bool = False) -> str:
    """A refused argument as written (quoted: in Python's quotes), for an error line.

    Cut to `ECHO_CHARACTERS`, saying how long it was ("999...9... (5,001 characters)"); with
    `value` (the number it was read as) spelt otherwise (1e9, 0x10), that number too, in
    thousands ("1e9 (= 1,000,000,000)"), or in scientific notation beyond 60 digits; not
    for a number too long to be built (`whole_number`'s inf), which the text alone shows.
    """
    plain = text.strip()
    shown = repr(plain[:ECHO_CHARACTERS]) if quoted else plain[:ECHO_CHARACTERS]
    if len(plain) > ECHO_CHARACTERS:
        shown += f"... ({len(plain):,} characters)"
    if isinstance(value, int) and not plain.lstrip("+-").isdigit():
        # in thousands up to 45 digits (60 characters with the commas); beyond, Decimal's notation
        # (Python refuses to write an int of more than 4,300 digits in full)
        shown += f" (= {value:,})" if abs(value) < 10**45 else f" (= {Decimal(value):.3e})"
    return shown


SEED_BOUNDS = (0, 2**63 - 1)  # the schema's `seed` range, here so that a refused --seed imports no pydantic


def _seed(text: str) -> int:
    """A seed (argparse type): the schema's `seed` bounds (`SEED_BOUNDS`), worded as every bounded option."""
    return bounded_int(*SEED_BOUNDS, what="seed")(text)


def schema_bounds(key: str) -> tuple[float, float]:
    """The (lowest, highest) whole number a scenario key accepts, read from the schema (`sim.schema`)."""
    from sim.schema import whole_number_bounds  # here: parsing the arguments imports no pydantic until needed

    return whole_number_bounds(key)


def bounded_int(low: float, high: float, what: str = ""):
    """An argparse type: a whole number in [low, high]; `what` names where the bounds come from."""

    def parse(text: str) -> int:
        try:
            value = whole_number(text)
        except Respelled as refused:  # a whole number written otherwise: outside the range, said as any such
            if low <= refused.meant <= high and not math.isinf(refused.meant):
                raise
            value = refused.meant
        if not low <= value <= high or math.isinf(value):  # inf (too long to build), even where a bound is inf
            source = f" (as {what})" if what else ""
            shown = given_as(text, value)
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}{source}, got {shown}")
        return value

    return parse


def workers(text: str) -> int:
    """The --workers type: a whole number in [1, MAX_WORKERS] whose interpreters fit in the memory available."""
    value = bounded_int(1, MAX_WORKERS)(text)
    from sim.limits import workers_problem  # after the bounds: a number out of range needs no more

    why = workers_problem(value)
    if why:  # refuse before any worker process starts
        raise argparse.ArgumentTypeError(why)
    return value


def like(key: str):
    """An argparse type for an option that stands for scenario key `key`: its schema bounds, its exit status 2.

    The bounds are read from the schema when the option is given, not when the parser is
    built: `--help` and the other options need no schema (pydantic).
    """

    def parse(text: str) -> int:
        try:
            whole_number(text)  # not a number: refused before the schema is read
        except Respelled:
            pass  # a whole number: its range decides what is said (`bounded_int`)
        return bounded_int(*schema_bounds(key), what=key)(text)

    parse.__name__ = f"like({key})"
    return parse


# Worker processes on one machine: each is an interpreter with the model's libraries
# (~250 MiB, sim.limits.BYTES_PER_PROCESS); the memory check refuses what does not fit.
MAX_WORKERS = 512
PORTS = (0, 65535)  # TCP ports; 0 asks the system for a free one

WORKERS_HELP = "local worker processes, or LocalCluster workers with --dask local (default 1)"
DASK_HELP = "run on Dask: a scheduler address (tcp://host:8786), or 'local' for a LocalCluster"


def _share(text: str) -> float:
    """A share in (0, 1] (argparse type)."""
    value = _decimal(text)
    if not (0 < value <= 1):
        raise argparse.ArgumentTypeError(f"must be a share in (0, 1], got {text[:60]}")
    return value


def _add_execution(parser: argparse.ArgumentParser) -> None:
    """--workers and --dask: where the runs of a many-run command execute (sim.executors)."""
    parser.add_argument("--workers", type=workers, default=1, metavar="N", help=WORKERS_HELP)
    parser.add_argument("--dask", type=dask_address, metavar="ADDRESS", help=DASK_HELP)


SET_HELP = (
    "change one scenario parameter for this command only, e.g. --set factions.NDF.salary_usd_month=200 "
    "(repeatable; `run.py params` lists the keys)"
)


def _add_set(parser: argparse.ArgumentParser) -> None:
    """--set KEY=VALUE (repeatable), into `args.overrides`."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)


def _examples(*commands: str) -> str:
    """An epilog: `examples:` and one `python run.py ...` line per command (tests/test_cli.py parses each)."""
    return "examples:\n" + "".join(f"  python run.py {command}\n" for command in commands)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (what is wrong, and where the help is), exit status 2.

    argparse's own prints the whole usage block first; in a batch job's log one line per
    problem is what the rest of the command line promises.
    """

    _words: list[str] = []  # the command line this parser reads (set by parse_known_args)

    def __init__(self, *args, **kwargs):
        # No abbreviations (`--step 3` for --steps): a script's abbreviation breaks, or changes
        # meaning, once another option shares its start; the "did you mean" hint names the option.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, remembering the words read (for `error`'s hints); a sub-command's parser gets the rest."""
        self._words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        """Print `message` on one line and exit with status 2 (an unknown option with the closest known one)."""
        prog = self.prog
        if message.startswith("unrecognized arguments: "):
            # argparse reports a sub-command's unknown options from the top-level parser
            command = self._command()
            message += (command or self)._closest_options(message.split(": ", 1)[1].split(), self._commands())
            prog = command.prog if command is not None else prog
        elif message.startswith("argument ") and message.endswith(": expected one argument"):
            message += self._dash_value_hint(message[len("argument ") :].split(":")[0].split("/"), self._words)
        elif message.startswith("the following arguments are required: "):
            # argparse says this before it names unknown options: `run.py --hel` is the start of --help
            words = self._words[: self._words.index("--")] if "--" in self._words else self._words
            unknown = [w for w in words if w.startswith("--") and w.split("=")[0] not in self._option_string_actions]
            message += self._closest_options(unknown, self._commands())
        elif given := re.fullmatch(r"argument -h/--help: ignored explicit argument '(.*)'", message):
            word = f"-h{given[1]}"  # `-help` or `-hel`: argparse reads -h with 'elp' after it
            if "--help".startswith(f"-{word}"):
                message += f"; {word}: did you mean --help?"
        self.exit(EXIT_BAD_INPUT, f"{prog}: error: {message} (see {prog} --help)\n")

    def _commands(self) -> dict:
        """{name: parser} of this parser's sub-commands ({} for a sub-command's own parser)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    def _command(self) -> OneLineParser | None:
        """The parser of the sub-command named on the command line (its first word that is not an option), or None."""
        commands = self._commands()
        word = next((w for w in self._words if not w.startswith("-")), None)
        return commands.get(word) if word is not None else None

    @staticmethod
    def _dash_value_hint(names: list[str], words: list[str]) -> str:
        """'; ... written --steps=-1e400' when the option's value on the command line is a number with a '-'.

        argparse takes such a word for an option (unless it reads as a plain negative number
        like -5 or -0.5) and reports the option as given no value; the value then never
        reaches the check that would say what is wrong with it.
        """
        for i, word in enumerate(words[:-1]):
            if word in names and re.match(r"-(\d|\.\d|inf|nan)", words[i + 1], re.IGNORECASE):
                return f"; a value that starts with '-' is written {word}={words[i + 1]}"
        return ""

    def _closest_options(self, words: list[str], commands: dict) -> str:
        """'; --stepz: did you mean --steps?' (Python 3.11's argparse suggests nothing), else ''.

        The closest of this parser's own options (a sub-command's, not another's); an option
        that belongs to other sub-commands only is named as theirs ("--seeds is an option of
        robustness, validate-patterns"), never suggested for itself.
        """
        import difflib

        options = {o for action in self._actions for o in action.option_strings if o.startswith("--")}
        hints = []
        for word in words:
            name = word.split("=")[0]
            if not name.startswith("--"):
                continue
            elsewhere = sorted(c for c, p in commands.items() if p is not self and name in p._option_string_actions)
            if elsewhere and name not in options:
                more = f" and {len(elsewhere) - 3} more" if len(elsewhere) > 3 else ""
                hints.append(f"{name} is an option of {', '.join(elsewhere[:3])}{more}, not of this command")
            elif starting := sorted(o for o in options if o.startswith(name) and o != name):
                # a start of options (abbreviations are refused): those it starts, not a look-alike
                # (`--rep` drew "--help"), at most three
                more = f" or {len(starting) - 3} more" if len(starting) > 3 else ""
                hints.append(f"{name}: did you mean {' or '.join(starting[:3])}{more}?")
            elif close := difflib.get_close_matches(name, options - {name}, n=1, cutoff=0.7):
                hints.append(f"{name}: did you mean {close[0]}?")
        return f"; {'; '.join(hints)}" if hints else ""


COMPARE_EXAMPLES = _examples(
    "compare baseline salary_parity",
    "compare baseline salary_parity patrons_agree --replicates 50 --workers 2",
    "compare baseline baseline --set-for 2 factions.NDF.salary_usd_month=200",
    "compare toy_two_towns toy_two_towns --set-for 2 factions.Red.salary_usd_month=90",
    "compare results/baseline/20260101T120000Z results/salary_parity/20260101T121500Z",
    "compare baseline salary_parity --outcomes 'defections.NDF>IRGC,clashes_total'",
)


def _add_compare(sub) -> None:
    """The `compare` sub-command's arguments (`sim.comparison`)."""
    compare = sub.add_parser(
        "compare",
        help="compare scenarios (or finished runs) side by side on common seeds: table, plots, summary",
        description="Run two or more scenarios with the same seeds (or read results directories of\n"
        "`run.py run`) and compare each with the first: key outcomes per scenario (median,\n"
        "5-95%), the paired difference with a 95% bootstrap interval ('clear' when it\n"
        "excludes 0), overlay plots, and a plain-language summary on the terminal.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=COMPARE_EXAMPLES,
    )
    compare.add_argument(  # as every other command's (`build_parser.command`)
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an internal error"
    )
    compare.add_argument(
        "inputs",
        nargs="+",
        metavar="SCENARIO|RESULTS_DIR",
        help="two or more scenarios (file, or name in scenarios/) or results directories of `run.py run`; "
        "each is compared with the first",
    )
    every = "override one scenario key in every scenario input (repeatable)"
    compare.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=every)
    compare.add_argument(
        "--set-for",
        dest="overrides_for",
        nargs=2,
        action="append",
        default=[],
        metavar=("WHICH", "KEY=VALUE"),
        help="override one key in one input only: WHICH is its position (1, 2, ...) or its name as written "
        "(repeatable), e.g. --set-for 2 factions.NDF.salary_usd_month=200",
    )
    theirs = "or the results directories'"
    for flag, kind, metavar, text in (
        ("--replicates", like("sweep.replicates"), "N", f"runs per scenario, same seeds in all (default 30, {theirs})"),
        ("--seed", _seed, "SEED", f"root seed (default: the first scenario's, {theirs})"),
        ("--steps", like("steps"), "DAYS", f"days per run (default: the first scenario's, {theirs})"),
    ):
        compare.add_argument(flag, type=kind, metavar=metavar, help=text)
    compare.add_argument(
        "--outcomes",
        action="append",
        default=None,
        metavar="NAME,NAME",
        help="outcomes to compare, comma-separated (repeatable; quote names with >), e.g. "
        "'defections.NDF>IRGC,clashes_total' "
        "(default: defections both ways where recruits can make them, fighters and territory per faction, "
        "clashes, killed, agreements, "
        "insurgent peak)",
    )
    _add_execution(compare)
    compare.add_argument(
        "--out",
        type=path_argument,
        metavar="DIR",
        help="output directory, new or empty (default results/compare/<timestamp>/)",
    )
    compare.add_argument("--no-plots", action="store_true", help="skip drawing the overlay plots")


def build_parser() -> argparse.ArgumentParser:
    """The `run.py` argument parser: one subcommand per entry of `COMMANDS`, in `args.command`.

    Every argument has a help text and every subcommand's `--help` ends with examples
    (`epilog`, kept verbatim by `RawDescriptionHelpFormatter`); tests/test_cli.py checks both.
    """
    raw = argparse.RawDescriptionHelpFormatter
    parser = OneLineParser(
        prog="run.py",
        description="Agent-based simulation of territorial influence among armed factions.\n"
        "`run.py COMMAND --help` explains a command's arguments, with examples.",
        epilog=_examples("list", "params salary", "run baseline --steps 90", "validate baseline"),
        formatter_class=raw,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")

    def command(name: str, summary: str, examples: str) -> argparse.ArgumentParser:
        description = textwrap.fill(summary[0].upper() + summary[1:] + ".", 79)  # kept as is by `raw`
        parser = sub.add_parser(name, help=summary, description=description, epilog=examples, formatter_class=raw)
        # Also after the command, where "run with --debug" sends people (`run.py run ... --debug`);
        # SUPPRESS leaves the main parser's value when it is not given here.
        parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an internal error"
        )
        return parser

    run = command(
        "run",
        "run a scenario and write results and plots",
        _examples(
            "run baseline",
            "run baseline --steps 90 --replicates 8 --workers 2",
            "run baseline --set factions.NDF.salary_usd_month=200 --out results/ndf-pay",
            "run scenarios/toy_two_towns.yaml --seed 7 --no-plots",
        ),
    )
    run.add_argument(
        "scenario", help="scenario file, or a name in scenarios/ (e.g. baseline; `run.py list` lists them)"
    )
    run.add_argument("--seed", type=_seed, metavar="SEED", help="the run's seed (the root seed with --replicates)")
    run.add_argument("--steps", type=like("steps"), metavar="DAYS", help="days to simulate (default: the scenario's)")
    run.add_argument(
        "--replicates", type=like("sweep.replicates"), default=1, metavar="N", help="independent runs (default 1)"
    )
    _add_execution(run)
    _add_set(run)
    run.add_argument(
        "--posterior",
        type=path_argument,
        metavar="FILE|DIR",
        help="a calibration's posterior.csv (or its directory): replicate k runs with kept draw k "
        "(cycled) instead of the scenario's values",
    )
    run.add_argument(
        "--out", type=path_argument, metavar="DIR", help="write exactly here (default results/<scenario>/<timestamp>/)"
    )
    run.add_argument("--no-plots", action="store_true", help="skip drawing plots")

    validate = command(
        "validate",
        "check scenario files without running them",
        _examples(
            "validate baseline",
            "validate scenarios/*.yaml",
            "validate baseline --set rules.clashes.p_max=0.01",
        ),
    )
    validate.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario files or names in scenarios/")
    _add_set(validate)

    command("list", "list the scenarios in scenarios/ with their descriptions", _examples("list"))

    params = command(
        "params",
        "what a scenario parameter means: unit, default, range, source and help, from the schema",
        _examples(
            "params",
            "params salary",
            "params 'rules.clashes.*'",
            "params factions.IRGC.salary_usd_month",
            "params 'factions.<faction>.posture' --scenario toy_two_towns",
            "params --format csv",
        ),
    )
    params.add_argument(
        "query",
        nargs="?",
        metavar="PATTERN|KEY",
        help="a key path as for --set (shows that parameter in full), or a word or glob matched against key paths "
        "and help texts, case-insensitive (default: list every parameter)",
    )
    params.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        metavar="SCENARIO",
        help=f"scenario whose values and citations are shown (default {DEFAULT_SCENARIO})",
    )
    params.add_argument(
        "--format",
        choices=("text", "markdown", "csv"),
        default="text",
        help="text (default; fits 100 columns), markdown (a table) or csv",
    )

    plot = command(
        "plot",
        "redraw the plots of a results directory from its files",
        _examples(
            "plot results/baseline/20250101T120000Z",
        ),
    )
    plot.add_argument(
        "results_dir", type=path_argument, metavar="RESULTS_DIR", help="a directory written by `run.py run`"
    )

    sweep = command(
        "sweep",
        "run the scenario's `sweep:` design (resumable)",
        _examples(
            "sweep sweep_salary_mediation --workers 2",
            "sweep sweep_salary_mediation --steps 120 --out results/sweep-short",
            "sweep sweep_salary_mediation --resume results/sweep-short",
        ),
    )
    sweep.add_argument("scenario", help="scenario file with a `sweep:` section, or its name in scenarios/")
    sweep.add_argument("--seed", type=_seed, metavar="SEED", help="root seed (default: the scenario's)")
    sweep.add_argument("--steps", type=like("steps"), metavar="DAYS", help="days per run (default: the scenario's)")
    _add_execution(sweep)
    _add_set(sweep)
    sweep.add_argument(
        "--out",
        type=path_argument,
        metavar="DIR",
        help="sweep directory (default results/<scenario>/sweep-<timestamp>/)",
    )
    sweep.add_argument("--resume", type=path_argument, metavar="DIR", help="continue an interrupted sweep in DIR")
    sweep.add_argument("--no-analysis", action="store_true", help="skip the analysis and plots at the end")

    analyze = command(
        "analyze",
        "summaries, sensitivity indices and plots of a sweep directory",
        _examples(
            "analyze results/sweep_salary_mediation/sweep-20250101T120000Z",
        ),
    )
    analyze.add_argument(
        "sweep_dir", type=path_argument, metavar="SWEEP_DIR", help="a directory written by `run.py sweep`"
    )

    patterns = command(
        "validate-patterns",
        "check that the scenario reproduces the article's patterns across replicates",
        _examples(
            "validate-patterns baseline",
            "validate-patterns baseline --replicates 20 --steps 180 --workers 2",
            "validate-patterns baseline --seeds 20191101 9002 --variants",
        ),
    )
    patterns.add_argument("scenario", help="scenario with a `validation:` section, or its name in scenarios/")
    patterns.add_argument(
        "--replicates", type=like("sweep.replicates"), default=100, metavar="N", help="runs (default 100)"
    )
    seeding = patterns.add_mutually_exclusive_group()
    seeding.add_argument("--seed", type=_seed, metavar="SEED", help="root seed (default: the scenario's)")
    seeding.add_argument(
        "--seeds",
        type=_seed,
        nargs="+",
        metavar="SEED",
        help="validate at each of these root seeds (e.g. --seeds 20191101 9002); passes only if it passes at every one",
    )
    patterns.add_argument(
        "--variants",
        action="store_true",
        help="also compare the scenario's policy variants (validation.variants) on common random numbers",
    )
    patterns.add_argument(
        "--docs",
        action="store_true",
        help="also publish the report as docs/VALIDATION.md and docs/validation/ (keeps its Calibration section)",
    )
    patterns.add_argument(
        "--threshold",
        type=_share,
        metavar="SHARE",
        help="share of runs each pattern must reach, in (0, 1] (default: the scenario's validation.threshold, 0.90)",
    )
    _add_execution(patterns)
    patterns.add_argument("--steps", type=like("steps"), metavar="DAYS", help="days per run (default: the scenario's)")
    _add_set(patterns)
    patterns.add_argument(
        "--out",
        type=path_argument,
        metavar="DIR",
        help="report directory (default results/<scenario>/validation-<ts>/)",
    )

    variants = command(
        "compare-variants",
        "run the base and its policy variants on common seeds; paired differences with bootstrap intervals",
        _examples(
            "compare-variants",
            "compare-variants baseline --variant salary_parity --replicates 20 --workers 2",
        ),
    )
    variants.add_argument(
        "base", nargs="?", default=DEFAULT_SCENARIO, help=f"base scenario (default {DEFAULT_SCENARIO})"
    )
    variants.add_argument(
        "--variant",
        dest="variants",
        action="append",
        default=[],
        metavar="NAME",
        help="a variant scenario (repeatable; default: the six policy variants of scenarios/)",
    )
    variants.add_argument(
        "--replicates", type=like("sweep.replicates"), default=100, metavar="N", help="runs per scenario (default 100)"
    )
    variants.add_argument("--seed", type=_seed, metavar="SEED", help="root seed (default: the base scenario's)")
    _add_execution(variants)
    variants.add_argument(
        "--steps", type=like("steps"), metavar="DAYS", help="days per run (default: the base scenario's)"
    )
    _add_set(variants)
    variants.add_argument(
        "--out", type=path_argument, metavar="DIR", help="output directory (default results/<base>/variants-<ts>/)"
    )

    _add_compare(sub)

    calibrate = command(
        "calibrate",
        "fit the scenario's `calibration:` parameters to the article (ABC)",
        _examples(
            "calibrate calibrate_baseline --workers 2",
            "calibrate calibrate_baseline --out results/calibration-1",
            "calibrate calibrate_baseline --resume results/calibration-1",
        ),
    )
    calibrate.add_argument("scenario", help="scenario with a `calibration:` section, or its name in scenarios/")
    calibrate.add_argument("--seed", type=_seed, metavar="SEED", help="root seed (default: the scenario's)")
    _add_set(calibrate)
    _add_execution(calibrate)
    calibrate.add_argument(
        "--out",
        type=path_argument,
        metavar="DIR",
        help="output directory (default results/<scenario>/calibration-<ts>/)",
    )
    calibrate.add_argument(
        "--resume", type=path_argument, metavar="DIR", help="continue an interrupted calibration in DIR"
    )

    robust = command(
        "robustness",
        "where in the assumptions' plausible ranges do the verdicts hold? (Latin hypercube, PRIM; resumable)",
        _examples(
            "robustness baseline --workers 2",
            "robustness baseline --points 16 --replicates 2 --steps 180 --variant salary_parity",
        ),
    )
    robust.add_argument("scenario", help="scenario with a `robustness:` section (e.g. baseline)")
    robust.add_argument(
        "--points",
        type=like("robustness.points"),
        metavar="N",
        help="Latin-hypercube points (default: the scenario's)",
    )
    robust.add_argument(
        "--replicates",
        type=like("robustness.replicates"),
        metavar="N",
        help="runs per point and scenario (default: the scenario's)",
    )
    robust.add_argument(
        "--seed", type=_seed, metavar="SEED", help="root seed of the design and the runs (default: the scenario's)"
    )
    robust.add_argument("--steps", type=like("steps"), metavar="DAYS", help="days per run (default: the scenario's)")
    robust.add_argument(
        "--variant",
        dest="variants",
        action="append",
        default=None,
        metavar="NAME",
        help="a policy variant to judge (repeatable; default: every variant of the scenario)",
    )
    _add_execution(robust)
    _add_set(robust)
    robust.add_argument(
        "--out",
        type=path_argument,
        metavar="DIR",
        help="output directory (default results/<scenario>/robustness-<ts>/)",
    )
    robust.add_argument(
        "--resume", type=path_argument, metavar="DIR", help="continue an interrupted robustness job in DIR"
    )

    export = command(
        "export-acled",
        "write a results directory's events in ACLED's column layout",
        _examples(
            "export-acled results/baseline/20250101T120000Z",
            "export-acled results/baseline/20250101T120000Z --out events.csv",
        ),
    )
    export.add_argument(
        "results_dir", type=path_argument, metavar="RESULTS_DIR", help="a directory written by `run.py run`"
    )
    export.add_argument(
        "--out",
        type=path_argument,
        metavar="FILE",
        help="new CSV to write, never replaced (default RESULTS_DIR/acled_events.csv)",
    )

    compare = command(
        "compare-events",
        "monthly events and fatalities per event type and place: model against an ACLED export",
        _examples(
            "compare-events results/baseline/20250101T120000Z acled_export.csv",
            "compare-events results/baseline/20250101T120000Z acled_export.csv --match-km 10",
        ),
    )
    compare.add_argument(
        "results_dir", type=path_argument, metavar="RESULTS_DIR", help="a directory written by `run.py run`"
    )
    compare.add_argument(
        "observed",
        type=path_argument,
        metavar="OBSERVED_CSV",
        help="observed CSV, ACLED layout (event_date, event_type, fatalities; latitude/longitude or location)",
    )
    compare.add_argument(
        "--out",
        type=path_argument,
        metavar="DIR",
        help="output directory, new or empty (default RESULTS_DIR/events-<UTC timestamp>/)",
    )
    compare.add_argument(
        "--match-km",
        type=_match_km,
        metavar="KM",
        help="an event belongs to the nearest place within KM km, > 0 and at most 20,000 "
        "(default: 2 cells of the grid, in km)",
    )

    explore = command(
        "explore",
        "open the interactive explorer in a browser (needs the ui extra)",
        _examples(
            "explore",
            "explore toy_two_towns --port 8765 --open",
        ),
    )
    explore.add_argument(
        "scenario",
        nargs="?",
        default=DEFAULT_SCENARIO,
        help=f"scenario to open first, a name in scenarios/ or a file (default {DEFAULT_SCENARIO})",
    )
    explore.add_argument(
        "--port",
        type=bounded_int(*PORTS),
        metavar="PORT",
        help=f"localhost port, {PORTS[0]}..{PORTS[1]} (default or 0: a free one)",
    )
    explore.add_argument("--open", action="store_true", help="also open the page in the default browser")
    return parser


def cmd_run(args) -> int:
    """`run.py run`: run a scenario's replicates, write a results directory (and plots), print its path.

    Returns EXIT_OK; bad input (scenario, overrides, a non-empty `--out`, an unreachable
    cluster) raises, and `main` maps it to an exit status.
    """
    from sim.api import simulate
    from sim.results import claim_output_dir
    from sim.scenario import load_scenario, resolve_scenario_path

    # Claim the output directory (writable, not in use, empty) before spending time on the
    # runs; the scenario is loaded first (once: `simulate` takes it as loaded) for its name
    # (the default directory) and to refuse bad input before anything is created.
    path = resolve_scenario_path(args.scenario)
    config = load_scenario(path, args.overrides)
    with claim_output_dir(args.out, scenario=config.name) as claim:
        simulation = simulate(
            config,
            scenario_file=str(path),
            seed=args.seed,
            steps=args.steps,
            replicates=args.replicates,
            workers=args.workers,
            overrides=args.overrides,
            dask=args.dask,  # reached (or refused, exit 2) before any run
            posterior=args.posterior,  # read and checked (or refused, exit 2) before any run
        )
        out = simulation.save(claim.directory, plots=not args.no_plots)
    print(out)
    return EXIT_OK


def cmd_validate(args) -> int:
    """`run.py validate`: load and check each scenario, printing a summary or its problems.

    Returns EXIT_OK if every scenario is valid, EXIT_BAD_INPUT if any is not (all are checked).
    """
    from sim.scenario import load_scenario, resolve_scenario_path
    from sim.yaml_source import ScenarioError

    status = EXIT_OK
    for name in args.scenarios:
        path = resolve_scenario_path(name)
        try:
            scenario = load_scenario(path, args.overrides)
        except ScenarioError as error:
            print(error, file=sys.stderr)
            status = EXIT_BAD_INPUT
        else:
            print(
                f"{path}: ok ({scenario.name}: {len(scenario.sites)} sites, "
                f"{len(scenario.factions)} factions, {scenario.steps} steps)"
            )
    return status


def cmd_list(args) -> int:
    """`run.py list`: print the scenarios in scenarios/ with their descriptions; returns EXIT_OK."""
    from sim.scenario import list_scenarios

    rows = list_scenarios()
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return EXIT_OK


def cmd_params(args) -> int:
    """`run.py params [PATTERN|KEY]`: list the parameters a pattern matches, or one in full (`sim.params`).

    Returns EXIT_OK; an unknown scenario, key path or a pattern matching nothing raises
    ScenarioError (exit 2, with the closest names).
    """
    from sim.params import cli_params

    return cli_params(args)


def cmd_plot(args) -> int:
    """`run.py plot`: redraw the plots of a results directory, print each file's path; returns EXIT_OK.

    The directory is claimed meanwhile (`sim.results.claim_output_dir`): not while another job writes it.
    """
    from sim.plots import plot_run
    from sim.results import claim_output_dir, load_run

    load_run(args.results_dir)  # not a results directory: refused as such, before the claim
    with claim_output_dir(args.results_dir, existing=True):
        for path in plot_run(args.results_dir):
            print(path)
    return EXIT_OK


def cmd_sweep(args) -> int:
    """`run.py sweep`: start (or `--resume`) a sweep, run it, analyse it unless `--no-analysis`.

    Everything that can be refused (scenario, `--out`, a foreign or changed `--resume`
    directory, a directory in use by another job, the cluster) is checked before anything is
    written; the directory is claimed (`sim.results.claim_output_dir`) until the command ends.
    Prints the sweep directory, and on stderr how many runs failed. Returns EXIT_OK even if
    some runs failed (they are in outcomes.csv); EXIT_BAD_INPUT if both `--out` and `--resume` are given.
    """
    from sim.executors import make_backend
    from sim.results import claim_output_dir
    from sim.scenario import check_overrides_not_varied, load_scenario, resolve_scenario_path
    from sim.sweep import SweepError, check_resume, run_sweep, start_sweep

    path = resolve_scenario_path(args.scenario)
    config = load_scenario(path, args.overrides)
    if config.sweep is not None:  # before the output directory is claimed (start_sweep checks it too)
        check_overrides_not_varied(args.overrides, config.sweep.parameters, "swept by the design", "`sweep.parameters`")
    if args.resume is not None:
        if args.out is not None:
            print("error: give either --out or --resume", file=sys.stderr)
            return EXIT_BAD_INPUT
        claim = claim_output_dir(args.resume, existing=True)  # one job per directory
    else:
        if config.sweep is None:
            raise SweepError(f"scenario '{config.name}' has no `sweep:` section")
        claim = claim_output_dir(args.out, scenario=config.name, kind="sweep")
    args.claimed = claim.directory  # for the message after an interruption
    with claim:
        if args.resume is not None:
            # The same sweep or nothing: scenario (with --set), --seed, --steps as it started.
            check_resume(args.resume, config, root_seed=args.seed, steps=args.steps)
        # Connect to the cluster (or start the workers) before writing anything.
        backend = make_backend(args.workers, args.dask)
        if args.resume is not None:
            directory = args.resume
        else:
            try:
                directory = start_sweep(
                    config,
                    out=claim.directory,
                    root_seed=args.seed,
                    steps=args.steps,
                    scenario_file=str(path),
                    overrides=args.overrides,
                    executor_name=backend.label,
                )
            except BaseException:
                backend.close()
                raise
        counts = run_sweep(directory, backend=backend)
        if counts["finished"] and not args.no_analysis:
            args.analysing = directory  # for the message after an interruption (the import too): the runs are done
            from sim.analysis import analyze

            analyze(directory)
    print(directory)
    if counts["failed"]:
        print(f"{counts['failed']} of {counts['total']} runs failed (see outcomes.csv)", file=sys.stderr)
    return EXIT_OK


def cmd_analyze(args) -> int:
    """`run.py analyze`: write the summaries, sensitivity indices and plots of a sweep directory.

    Prints each file written; returns EXIT_OK. A directory that is not a sweep raises SweepError,
    one that another job holds (a running sweep) OutputError.
    """
    from sim.analysis import analyze
    from sim.results import claim_output_dir
    from sim.sweep import load_sweep

    load_sweep(args.sweep_dir)
    with claim_output_dir(args.sweep_dir, existing=True):  # not while the sweep runs or another analysis writes
        for path in analyze(args.sweep_dir):
            print(path)
    return EXIT_OK


def cmd_validate_patterns(args) -> int:
    """`run.py validate-patterns`: check the article's patterns over replicates, write a report.

    Returns 0 if every applicable pattern passes, 1 otherwise (`sim.patterns.cli_validate_patterns`).
    """
    from sim.patterns import cli_validate_patterns

    return cli_validate_patterns(args)


def cmd_compare_variants(args) -> int:
    """`run.py compare-variants`: compare policy variants with the base on common seeds, write variants.csv.

    Returns 0 if every variant moves its outcomes as expected, 1 otherwise (`sim.variants.cli_compare_variants`).
    """
    from sim.variants import cli_compare_variants

    return cli_compare_variants(args)


def cmd_compare(args) -> int:
    """`run.py compare`: compare scenarios or results directories on common seeds (`sim.comparison.cli_compare`).

    Prints the plain-language summary and the output directory; returns EXIT_OK.
    """
    from sim.comparison import cli_compare

    return cli_compare(args)


def cmd_calibrate(args) -> int:
    """`run.py calibrate`: run (or resume) the scenario's ABC calibration (`sim.calibration.cli_calibrate`).

    Prints the posterior table and the output directory; returns EXIT_OK.
    """
    from sim.calibration import cli_calibrate

    return cli_calibrate(args)


def cmd_robustness(args) -> int:
    """`run.py robustness`: the share of the assumptions' plausible space where the verdicts hold, PRIM boxes.

    Prints each verdict's share and the output directory; returns EXIT_OK (`sim.robustness.cli_robustness`).
    """
    from sim.robustness import cli_robustness

    return cli_robustness(args)


def cmd_export_acled(args) -> int:
    """`run.py export-acled`: write `acled_events.csv` (`sim.acled.export_acled`), print its path; returns EXIT_OK.

    An existing output file raises OutputError (exit 2): nothing is overwritten.
    """
    from sim.acled import export_acled

    print(export_acled(args.results_dir, args.out))
    return EXIT_OK


def cmd_compare_events(args) -> int:
    """`run.py compare-events`: write a comparison directory (`sim.acled.compare_events`), print each file.

    Prints on stderr how the observed events were placed (by coordinates, by name, elsewhere),
    and a line when the observed and simulated periods overlap only in part.
    Returns EXIT_OK; a bad observed file raises EventDataError, a non-empty `--out` OutputError (exit 2).
    """
    from sim.acled import compare_events

    comparison = compare_events(args.results_dir, args.observed, args.out, match_km=args.match_km)
    for path in comparison.paths:
        print(path)
    print(comparison.summary(), file=sys.stderr)
    if comparison.period is not None:  # the observed and simulated periods overlap in part
        print(comparison.period, file=sys.stderr)
    return EXIT_OK


def cmd_explore(args) -> int:
    """`run.py explore`: serve the browser explorer until interrupted (`sim.explorer.serve`).

    Returns EXIT_BAD_INPUT if the ui extra is not installed.
    """
    try:
        from sim.explorer import serve
    except ImportError as error:
        print(f"error: the explorer needs the ui extra: pip install -e '.[ui]' ({error})", file=sys.stderr)
        return EXIT_BAD_INPUT
    return serve(scenario=args.scenario, port=args.port, open_browser=args.open)


COMMANDS = {
    "run": cmd_run,
    "validate": cmd_validate,
    "list": cmd_list,
    "params": cmd_params,
    "plot": cmd_plot,
    "sweep": cmd_sweep,
    "analyze": cmd_analyze,
    "validate-patterns": cmd_validate_patterns,
    "compare-variants": cmd_compare_variants,
    "compare": cmd_compare,
    "calibrate": cmd_calibrate,
    "robustness": cmd_robustness,
    "export-acled": cmd_export_acled,
    "compare-events": cmd_compare_events,
    "explore": cmd_explore,
}


# A full disk, a quota or a file system turned read-only while a job writes: exit status 2.
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


# The exceptions that mean bad input (exit 2), by module and class; a ScenarioError's lines
# already name file, line and key path, the others are printed after "error:".
SCENARIO_ERROR = ("sim.yaml_source", "ScenarioError")
BAD_INPUT_ERRORS = (
    SCENARIO_ERROR,
    ("sim.results", "OutputError"),
    ("sim.sweep", "SweepError"),
    ("sim.executors", "ExecutorError"),
    ("sim.acled", "EventDataError"),
    ("sim.posterior", "PosteriorError"),
)


def defined(errors) -> tuple[type[BaseException], ...]:
    """The classes of `errors` ((module, class) pairs) whose module is imported, for an `except` clause.

    An error whose module was never imported cannot have been raised, and importing them all
    up front would import pandas, scipy and pydantic before the arguments are parsed.
    """
    return tuple(getattr(sys.modules[module], name) for module, name in errors if module in sys.modules)


def _internal(error: BaseException, args) -> int:
    """Report an internal error on one line (traceback with --debug or SIM_DEBUG); EXIT_INTERNAL."""
    if getattr(args, "debug", False) or os.environ.get("SIM_DEBUG"):
        traceback.print_exception(error)
    if (missing := missing_dependency(error)) is not None:
        print(missing, file=sys.stderr)
        return EXIT_INTERNAL
    if (damaged := damaged_kernel_cache(error)) is not None:
        print(damaged, file=sys.stderr)
        return EXIT_INTERNAL
    print(f"internal error: {type(error).__name__}: {error} (run with --debug for the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


def missing_dependency(error: BaseException) -> str | None:
    """The one line for a package this Python lacks (a third-party import failed), else None.

    Typically `python run.py ...` with a Python other than the project's environment's (the
    README's commands run in `.venv`): every import of pandas, pydantic, numba... fails there.
    """
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return None
    package = error.name.split(".")[0]
    if package == "sim":  # the project's own module: a broken checkout, an internal error
        return None
    return (
        f"error: this Python ({sys.executable}) lacks the package '{package}' the command needs: run it with the "
        "project's environment (`. .venv/bin/activate`, or .venv/bin/python run.py ...; `make install` creates it) "
        "or install the project into this one (pip install -e '.[dev]')"
    )


def damaged_kernel_cache(error: BaseException) -> str | None:
    """The one line for an error raised while numba read its cache of compiled kernels, else None.

    `sim.compiled` compiles a kernel whose cache files cannot be loaded again; this is the
    last resort should numba fail there anyway (a damaged file it reads another way): the
    user is told which directory to delete rather than shown an unpickling error.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        frames = traceback.extract_tb(error.__traceback__)
        if any(Path(frame.filename).parts[-3:] == ("numba", "core", "caching.py") for frame in frames):
            compiled = sys.modules.get("sim.compiled")
            directory = getattr(compiled, "CACHE", None) or os.environ.get("NUMBA_CACHE_DIR") or "numba's cache"
            from sim.yaml_source import visible

            return visible(
                f"error: the compiled-kernel cache at {directory} is damaged ({type(error).__name__}: {error}): "
                f"delete it (rm -r {shlex.quote(str(directory))}) and run again; the kernels are compiled anew "
                "(about 15 s)"
            )
        error = error.__cause__ or error.__context__
    return None


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a warning as the command's other messages are shown: one line, "warning: ...".

    Python's default adds the file, line and source line of the code that warned, which
    says nothing to a user and splits one message over two lines of a batch job's log.
    """
    from sim.yaml_source import MESSAGE_LIMIT, shortened, visible

    print(f"warning: {visible(shortened(str(message), MESSAGE_LIMIT))}", file=sys.stderr if file is None else file)


def _interrupted(interrupt: KeyboardInterrupt, args) -> int:
    """Say what an interrupt left behind, on one line; EXIT_TERMINATED for SIGTERM, else EXIT_INTERRUPTED."""
    what = "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted"
    if getattr(args, "analysing", None) is not None:  # a sweep's runs all done, its analysis cut short
        again = shlex.quote(str(args.analysing))
        print(f"{what} during the analysis; every run is kept: redo it with run.py analyze {again}", file=sys.stderr)
    elif args.command in ("sweep", "calibrate", "robustness"):
        where = getattr(args, "resume", None) or getattr(args, "out", None) or getattr(args, "claimed", None)
        from sim.results import RESUMABLE_MARKS  # a started sweep, robustness job, calibration

        if where is not None and not any((Path(where) / mark).is_file() for mark in RESUMABLE_MARKS):
            print(f"{what} before the start; nothing was written", file=sys.stderr)
        else:
            again = shlex.quote(str(where)) if where else "DIR"
            print(f"{what}; finished runs are kept: continue with --resume {again}", file=sys.stderr)
    elif args.command == "plot":  # each figure is replaced whole, one after the other
        again = shlex.quote(str(args.results_dir))
        print(f"{what}; figures drawn before it are new, the others as they were: run.py plot {again}", file=sys.stderr)
    elif args.command == "explore":  # once it serves, the explorer handles Ctrl-C (0) and SIGTERM (143)
        print(f"{what} before the explorer started", file=sys.stderr)
    elif args.command in ("validate", "list", "params"):  # they write nothing
        print(what, file=sys.stderr)
    else:  # every other command writes its directory staged: whole or not at all
        print(f"{what}; no results were written", file=sys.stderr)
    return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: `sys.argv[1:]`), run the command, and return the process exit status.

    Returns:
        EXIT_OK (0); EXIT_BAD_INPUT (2) for bad input (ScenarioError, OutputError, SweepError, EventDataError,
        ExecutorError, PosteriorError) and for a disk that is full, over quota or read-only while writing,
        reported on stderr; EXIT_INTERNAL (1) for any other error (traceback
        with `--debug` or SIM_DEBUG set); 130 on Ctrl-C, 143 on SIGTERM (both clean up first). Bad
        arguments make argparse exit with status 2 (SystemExit).
    """
    try:
        args = build_parser().parse_args(argv)  # argparse exits 2 on bad arguments
    except ModuleNotFoundError as error:  # an option's bounds come from the schema (pydantic)
        return _internal(error, argparse.Namespace(debug="--debug" in (sys.argv[1:] if argv is None else argv)))
    from sim import interrupts

    previous_sigterm, previous_sigint = _terminate_on_sigterm(), _note_ctrl_c()
    previous_hook = sys.unraisablehook
    previous_show = warnings.showwarning
    warnings.showwarning = _one_line_warning
    sys.unraisablehook = interrupts.quiet_unraisable(previous_hook)
    try:
        if getattr(args, "overrides", None):  # every command with --set; compare's --set-for: sim.comparison
            from sim.yaml_source import check_repeated_overrides

            check_repeated_overrides(args.overrides)
        status = COMMANDS[args.command](args)
        if (swallowed := interrupts.pending()) is not None:  # after the last safe point: the work is done
            what = "terminated (SIGTERM)" if isinstance(swallowed, Terminated) else "interrupted"
            print(f"{what} as the command ended; its output is complete", file=sys.stderr)
            return EXIT_TERMINATED if isinstance(swallowed, Terminated) else EXIT_INTERRUPTED
        return status
    except defined(BAD_INPUT_ERRORS) as error:  # evaluated when an exception arrives
        if isinstance(error, defined([SCENARIO_ERROR])):  # a line per problem, each already made visible
            print(error, file=sys.stderr)
        else:  # one line: a newline or an escape sequence in a path is shown escaped, not obeyed
            from sim.yaml_source import MESSAGE_LIMIT, shortened, visible

            # and of bounded length: a damaged file's value (5,001 digits) is echoed by its start and end
            print(f"error: {visible(shortened(str(error), MESSAGE_LIMIT))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as interrupt:
        return _interrupted(interrupt, args)
    except BrokenPipeError:
        # The reader of stdout went away (`run.py compare ... | head -1`): the files are written by
        # then; stop as a command killed by SIGPIPE would, quietly, and keep Python's final flush
        # from failing on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as error:
        if error.errno not in _NO_ROOM:
            return _internal(error, args)
        # The machine, not the code: say where and why on one line (staged files are already gone).
        where = f" {error.filename}" if error.filename else ""  # none: stdout, or a descriptor only
        print(f"error: cannot write{where}: {error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - the last line of defence: say what, exit 1
        from sim.executors import interrupt_behind

        if (interrupt := interrupt_behind(error)) is not None:  # Ctrl-C/SIGTERM inside a compiled kernel
            return _interrupted(interrupt, args)
        return _internal(error, args)
    finally:
        interrupts.forget()
        sys.unraisablehook = previous_hook
        warnings.showwarning = previous_show
        if previous_sigterm is not False:
            signal.signal(signal.SIGTERM, previous_sigterm if previous_sigterm is not None else signal.SIG_DFL)
        if previous_sigint is not None:
            signal.signal(signal.SIGINT, previous_sigint)
