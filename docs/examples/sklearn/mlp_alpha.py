"""Varying the L2 penalty alpha: the setting of scikit-learn's gallery example ``plot_mlp_alpha``.

Three two-feature data sets (moons, circles, a noisy linearly separable set), a 60/40 split, and a
StandardScaler + MLPClassifier(solver="lbfgs", hidden_layer_sizes=[10, 10], early_stopping=True,
max_iter=2000, random_state=1) pipeline for five values of alpha; prints the test accuracy of each.
``python mlp_alpha.py --plot alpha.png`` also draws the decision functions.

benchmarks/sklearn_gallery.py runs this file as it is and with the one import line below swapped
for ``from nnmath.sklearn import MLPClassifier``.
"""

import sys

import numpy as np
from sklearn.datasets import make_circles, make_classification, make_moons
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

alphas = np.logspace(-1, 1, 5)
classifiers = {
    f"alpha {alpha:.2f}": make_pipeline(
        StandardScaler(),
        MLPClassifier(
            solver="lbfgs",
            alpha=alpha,
            random_state=1,
            max_iter=2000,
            early_stopping=True,
            hidden_layer_sizes=[10, 10],
        ),
    )
    for alpha in alphas
}

X, y = make_classification(
    n_features=2, n_redundant=0, n_informative=2, random_state=0, n_clusters_per_class=1
)
X += 2 * np.random.RandomState(2).uniform(size=X.shape)
datasets = {
    "moons": make_moons(noise=0.3, random_state=0),
    "circles": make_circles(noise=0.2, factor=0.5, random_state=1),
    "linearly separable": (X, y),
}

scores = {}
for data_name, (X, y) in datasets.items():
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=42)
    for name, clf in classifiers.items():
        clf.fit(X_train, y_train)
        scores[data_name, name] = clf.score(X_test, y_test)
        print(f"{data_name:20s} {name}  test accuracy {scores[data_name, name]:.3f}")

if "--plot" in sys.argv:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(len(datasets), len(classifiers), figsize=(17, 9))
    for row, (data_name, (X, y)) in zip(axes, datasets.items(), strict=True):
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=42)
        xx, yy = np.meshgrid(
            np.arange(X[:, 0].min() - 0.5, X[:, 0].max() + 0.5, 0.02),
            np.arange(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5, 0.02),
        )
        for ax, (name, clf) in zip(row, classifiers.items(), strict=True):
            clf.fit(X_train, y_train)
            Z = clf.predict_proba(np.column_stack([xx.ravel(), yy.ravel()]))[:, 1]
            ax.contourf(xx, yy, Z.reshape(xx.shape), cmap=plt.cm.RdBu, alpha=0.8)
            ax.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap=plt.cm.RdBu, edgecolors="k")
            ax.set_title(f"{name}: {scores[data_name, name]:.3f}")
            ax.set_xticks(())
            ax.set_yticks(())
    figure.savefig(sys.argv[sys.argv.index("--plot") + 1])
