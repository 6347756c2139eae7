"""``nnmath check`` under a budget: costly formulas are refused in one line, fast and small.

The cases of issue 9 each return within 2 s, with a peak of traced memory under 512 MB, and a
refusal that says why; the estimate's numbers are checked by hand, and the meter stops an
evaluation at its memory cap or its clock.
"""

from __future__ import annotations

import ast
import math
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from nnmath.cli import main
from nnmath.derivation import check_formula, derive, evaluate, make_problem, parse
from nnmath.derivation.budget import Budget, FormulaBudgetError, Meter, estimate
from nnmath.derivation.syntax import MAX_DEPTH, FormulaSyntaxError
from nnmath.errors import NNMathError
from nnmath.losses import get_loss

SPEC = "3-10relu-6relu-3softmax"
ONES = "ones(100, 100)"

COSTLY = {
    "einsum over three operands": f"einsum('ab,cd,ef->', {ONES}, {ONES}, {ONES})",
    "60 chained products": " @ ".join(["ones(3000, 3000)"] * 60),
    "a chain of powers": "ones(3000, 1000)" + " ** ones(3000, 1000)" * 30,
    "990 nested minus signs": "-" * 990 + "dZ3",
    "a repeated output index": "einsum('ab->aa', A2)",
    "a 1,900-digit literal": "1" * 1900,
    "a literal that overflows": "1e999",
    "too many nested parentheses": "(" * 300 + "A2" + ")" * 300,
    "one value too large": "ones(100000, 100000)",
    "sums that fill the memory": "ones(3000, 1000)" + " + ones(3000, 1000)" * 20,
}


@pytest.fixture(scope="module")
def case():
    derivation = derive(SPEC, get_loss("cross-entropy"))
    return derivation, make_problem(derivation, samples=4, seed=0)


@pytest.mark.parametrize("name", list(COSTLY))
def test_costly_formulas_are_refused_fast_small_and_in_one_line(name, case):
    derivation, problem = case
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises((FormulaBudgetError, FormulaSyntaxError)) as caught:
        check_formula(derivation, problem, f"dW3 = {COSTLY[name]}")
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    message = str(caught.value)
    assert elapsed < 2.0, f"{name} took {elapsed:.2f} s"
    assert peak < 512 * 2**20, f"{name} peaked at {peak / 2**20:.0f} MB"
    assert "\n" not in message and len(message) < 400, message


def test_the_command_refuses_each_costly_formula_with_exit_2_and_one_line(capsys):
    for name, formula in COSTLY.items():
        assert main(["check", SPEC, f"dW3 = {formula}"]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("nnmath check: error: ") and err.count("\n") == 1, err


def test_a_fresh_process_returns_within_2_s_under_512_mb():
    """The whole command, interpreter included, on the 60 chained 3000 × 3000 products."""
    script = (
        "import resource, sys\n"
        "from nnmath.cli import main\n"
        "code = main(['check', sys.argv[1], sys.argv[2]])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, SPEC, f"dW3 = {COSTLY['60 chained products']}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.perf_counter() - start
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "operations" in done.stderr
    assert int(done.stdout.split()[-1]) < 512 * 1024  # ru_maxrss is in kB on Linux
    assert elapsed < 10.0  # interpreter and NumPy start-up on a shared machine; the check is ms


def test_the_refusals_say_why():
    env = {"A": np.ones((3, 4)), "S": 3}
    cases = {
        f"einsum('ab,cd,ef->', {ONES}, {ONES}, {ONES})": "3.0e12 operations",
        " @ ".join(["ones(3000, 3000)"] * 60): "the limit is 2.0e8",
        "ones(3000, 1000)" + " + ones(3000, 1000)" * 20: "938 MB together",
        "ones(100000, 100000)": "would hold 10000000000 numbers",
        "-" * 990 + "A": "nests 991 levels deep; at most 100",
        "1" * 1900: "(1900 digits) is too large",
        "einsum('ab->aa', A)": "each output index must appear once",
    }
    for formula, said in cases.items():
        with pytest.raises(NNMathError, match=said.replace("(", r"\(").replace(")", r"\)")):
            evaluate(formula, env)


# ---- the estimate, by hand ------------------------------------------------------------------------


def cost(formula, shapes):
    return estimate(parse(formula).expression, shapes, {})


def test_estimate_of_products_einsum_and_entrywise_operations():
    shapes = {"A": (5, 7), "B": (7, 11), "v": (7,)}
    product = cost("A @ B", shapes)
    assert product.operations == 2 * 5 * 7 * 11
    assert product.memory == 8 * 5 * 11
    assert cost("A @ v", shapes).operations == 2 * 5 * 7
    # einsum is the naive loop over all of its indices, one term per operand
    assert cost("einsum('ij,jk->ik', A, B)", shapes).operations == 5 * 7 * 11 * 2
    assert cost("einsum('ab,cd,ef->', A, A, A)", shapes).operations == 35**3 * 3
    # entry by entry: one per entry, ten for a transcendental and for **; .T is free
    assert cost("A + A", shapes).operations == 35
    assert cost("exp(A)", shapes).operations == 350
    assert cost("A ** 2", shapes).operations == 350
    assert cost("A.T", shapes).operations == 0 and cost("A.T", shapes).memory == 0
    # the sum over all intermediates: (A + A) and (A + A) * A
    both = cost("(A + A) * A", shapes)
    assert (both.operations, both.memory) == (70, 2 * 8 * 35)
    assert cost("sum(A, axis=0)", shapes).operations == 35


def test_the_meter_stops_at_the_clock_and_at_the_memory_cap():
    env = {"A": np.ones((3, 4))}
    with pytest.raises(FormulaBudgetError, match="stopped after"):
        evaluate("A + A", env, deadline=time.monotonic() - 1.0)
    meter = Meter(Budget(memory=100))
    meter.charge(np.ones(10))  # 80 bytes
    with pytest.raises(FormulaBudgetError, match="stopped at 160 bytes"):
        meter.charge(np.ones(10))


def test_the_same_limits_hold_for_the_python_api_and_can_be_set():
    env = {"A": np.ones((300, 300))}
    with pytest.raises(FormulaBudgetError):
        evaluate("A @ A @ A @ A", env, budget=Budget(operations=1e6))
    assert evaluate("A @ A", env).shape == (300, 300)  # 5.4e7 operations: within the default
    assert math.isinf(Budget(operations=math.inf).operations)


def test_nesting_up_to_the_limit_is_fine_and_the_limit_is_exact():
    assert evaluate("-" * (MAX_DEPTH - 1) + "A", {"A": np.ones(2)}).shape == (2,)
    with pytest.raises(FormulaSyntaxError, match="nests"):
        parse("-" * MAX_DEPTH + "A")
    assert isinstance(parse("(" * 150 + "A" + ")" * 150).expression, ast.Name)
