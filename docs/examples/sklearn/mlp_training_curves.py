"""Stochastic learning strategies compared: the setting of scikit-learn's gallery example
``plot_mlp_training_curves``.

Seven strategies (SGD with a constant or inverse-scaling rate, without momentum, with momentum and
with Nesterov's momentum, and Adam) on iris, digits, circles and moons scaled to [0, 1], with
MLPClassifier(random_state=0) and max_iter 15 on digits, 400 elsewhere; prints the training
accuracy, the final loss_ and the number of epochs of each. ``--plot FILE`` draws the loss_curve_s.

benchmarks/sklearn_gallery.py runs this file as it is and with the one import line below swapped
for ``from nnmath.sklearn import MLPClassifier``.
"""

import sys
import warnings

from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import MinMaxScaler

strategies = {
    "constant learning-rate": {"solver": "sgd", "momentum": 0, "learning_rate_init": 0.2},
    "constant with momentum": {
        "solver": "sgd",
        "momentum": 0.9,
        "nesterovs_momentum": False,
        "learning_rate_init": 0.2,
    },
    "constant with Nesterov's momentum": {
        "solver": "sgd",
        "momentum": 0.9,
        "nesterovs_momentum": True,
        "learning_rate_init": 0.2,
    },
    "inv-scaling learning-rate": {
        "solver": "sgd",
        "learning_rate": "invscaling",
        "momentum": 0,
        "learning_rate_init": 0.2,
    },
    "inv-scaling with momentum": {
        "solver": "sgd",
        "learning_rate": "invscaling",
        "momentum": 0.9,
        "nesterovs_momentum": False,
        "learning_rate_init": 0.2,
    },
    "inv-scaling with Nesterov's momentum": {
        "solver": "sgd",
        "learning_rate": "invscaling",
        "momentum": 0.9,
        "nesterovs_momentum": True,
        "learning_rate_init": 0.2,
    },
    "adam": {"solver": "adam", "learning_rate_init": 0.01},
}

data_sets = {
    "iris": datasets.load_iris(return_X_y=True),
    "digits": datasets.load_digits(return_X_y=True),
    "circles": datasets.make_circles(noise=0.2, factor=0.5, random_state=1),
    "moons": datasets.make_moons(noise=0.3, random_state=0),
}

curves = {}
for data_name, (X, y) in data_sets.items():
    X = MinMaxScaler().fit_transform(X)
    max_iter = 15 if data_name == "digits" else 400
    for label, params in strategies.items():
        mlp = MLPClassifier(random_state=0, max_iter=max_iter, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(X, y)
        curves[data_name, label] = mlp.loss_curve_
        print(
            f"{data_name:8s} {label:37s} training accuracy {mlp.score(X, y):.3f}  "
            f"loss {mlp.loss_:.4f}  epochs {mlp.n_iter_}"
        )

if "--plot" in sys.argv:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(15, 10))
    for ax, data_name in zip(axes.ravel(), data_sets, strict=True):
        for label in strategies:
            ax.plot(curves[data_name, label], label=label)
        ax.set_title(data_name)
    axes[0, 0].legend()
    figure.savefig(sys.argv[sys.argv.index("--plot") + 1])
