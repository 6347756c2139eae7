"""The playground: a local web page where a network trains and its mathematics shows live numbers.

``nnmath playground`` serves it (``pip install 'nnmath[playground]'``). One role per module:

- ``config``: the settings, their bounds and the page's address keys (no web dependency);
- ``data``: the built-in 2-D sets and uploaded CSV files, split and standardised;
- ``session``: one tab's experiment, trained a step at a time by the library;
- ``trainer``: the thread that steps a session while the page plays;
- ``frames``: what each frame draws (boundary, neurons, weights, gradients, curves);
- ``mathml``: LaTeX to MathML, matrices and prose for the page;
- ``mathpanel``: the derivation with the current batch's values and checks, the update, "check my
  formula"; ``chainrule``: one weight's chain rule with the numbers;
- ``sessions``: the live sessions of a server, one per tab;
- ``downloads``: the model file, the derivation and the worked example, written by the library;
- ``endpoints``: the request handlers and the frame stream; ``server``: the Starlette app and
  ``serve``;
- ``static/``: the page (plain HTML, CSS and small JavaScript modules by role: ``state``,
  ``controls``, ``network``, ``boundary``, ``curves``, ``math``, ``main``; no build step), which
  draws what the server computed.
"""
