"""First-layer weights of an MLP on handwritten digits: the setting of scikit-learn's gallery
example ``plot_mnist_filters``, on the 8×8 digits bundled with scikit-learn (MNIST would need a
download): pixels scaled to [0, 1], MLPClassifier(hidden_layer_sizes=(50,), max_iter=10,
alpha=1e-4, solver="sgd", random_state=1, learning_rate_init=0.1), the first 1200 images for
training and the other 597 for testing. Prints the verbose training log and both accuracies;
``--plot FILE`` draws 16 columns of coefs_[0] as 8×8 images.

benchmarks/sklearn_gallery.py runs this file as it is and with the one import line below swapped
for ``from nnmath.sklearn import MLPClassifier``.
"""

import sys
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test = X[:1200], X[1200:]
y_train, y_test = y[:1200], y[1200:]

mlp = MLPClassifier(
    hidden_layer_sizes=(50,),
    max_iter=10,
    alpha=1e-4,
    solver="sgd",
    verbose=10,
    random_state=1,
    learning_rate_init=0.1,
)
with warnings.catch_warnings():  # 10 epochs do not converge, on purpose
    warnings.simplefilter("ignore", ConvergenceWarning)
    mlp.fit(X_train, y_train)

print(f"Training set score: {mlp.score(X_train, y_train):f}")
print(f"Test set score: {mlp.score(X_test, y_test):f}")

if "--plot" in sys.argv:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(4, 4)
    vmin, vmax = mlp.coefs_[0].min(), mlp.coefs_[0].max()
    for coef, ax in zip(mlp.coefs_[0].T, axes.ravel(), strict=False):
        ax.matshow(coef.reshape(8, 8), cmap=plt.cm.gray, vmin=0.5 * vmin, vmax=0.5 * vmax)
        ax.set_xticks(())
        ax.set_yticks(())
    figure.savefig(sys.argv[sys.argv.index("--plot") + 1])
