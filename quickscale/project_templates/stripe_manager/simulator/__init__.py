"""The offline Stripe simulator: the ``Gateway`` interface without Stripe.

Selected when ``STRIPE_ENABLED`` is off outside production (never in
production). So the whole money path runs offline, in the demo and in browser
tests, through exactly the code that real Stripe events take:

- ``gateway``: ``SimulatorGateway``, each ``Gateway`` operation done on the
  simulator's own records, plus what only the simulator does (paying a
  checkout, the clock reaching a period end);
- ``delivery``: signed, Stripe-shaped events sent to the real webhook view
  once the simulator's transaction commits;
- ``views``: local pages standing in for Stripe's hosted checkout and portal;
- ``catalog``: the demo catalog a new project starts with;
- ``store``: the simulator's records (``SimulatedObject`` rows).
"""
