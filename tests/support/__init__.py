"""What the tests stand on, and what the benchmarks share with them: real processes
(app instances under granian, nginx, Redis servers), free ports, a small HTTP client with
a cookie jar, scratch databases, a TCP proxy that can take a service away, and the base
of the hypothesis state machines. Nothing here is a test.

The benchmarks in ``bench/`` import this package too (``bench/harness`` puts the
checkout's root on ``sys.path``), so it depends on nothing but the standard library, the
app's own dependencies, and pytest only where a test asked for it."""
