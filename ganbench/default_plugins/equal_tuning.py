"""What ``--defaults tuned`` gives each loss on the MNIST default pair (dcgan-lite-dense-ttur):
the best setting the committed equal-tuning study (:data:`STUDY`; its study.toml says the
protocol: 27 draws per loss from the shared space through successive halving at 2400
discriminator steps, the best on 7 new seeds) found for it.

Copied, value for value, from the study's runs.csv (its rows of ``search_phase`` "best"), so a
run never reads ``results/``; tests/test_tuned_defaults.py checks that every entry equals the
study's and that every loss the study tuned is here. A loss it did not tune (a new plugin's) is
absent and trains with the pair's defaults, marked untuned.
"""

from __future__ import annotations

STUDY = "results/equal-tuning-mnist"
STEP_UNIT = "discriminator"  # the study counted its budget in D steps (n_critic trades G steps)

# loss -> its best draw's values (trial 10 for non-saturating, 3 for minimax, 14 for wgan,
# 6 for feature-matching, and for the plugins' losses, by their registered names, 9 for wgan-gp,
# 13 for lsgan and 8 for hinge)
BEST: dict[str, dict] = {
    "non-saturating": {
        "optimizer_g": "rmsprop",
        "optimizer_d": "rmsprop",
        "lr_g": 0.000562994152621968,
        "lr_d": 0.000974814685013543,
        "beta1": 0.04740747760512931,
        "beta2": 0.9288472654520709,
        "n_critic": 1,
        "extras": {},
    },
    "minimax": {
        "optimizer_g": "rmsprop",
        "optimizer_d": "rmsprop",
        "lr_g": 0.0009494462927551903,
        "lr_d": 0.0011824233507642995,
        "beta1": 0.17704912300401732,
        "beta2": 0.959652209115641,
        "n_critic": 1,
        "extras": {},
    },
    "wgan": {
        "optimizer_g": "adam",
        "optimizer_d": "adam",
        "lr_g": 0.00017089735603335998,
        "lr_d": 5.62774346077448e-05,
        "beta1": 0.3241025363470442,
        "beta2": 0.9039344132690461,
        "n_critic": 1,
        "extras": {"clip": 0.029819625675428913},
    },
    "feature-matching": {
        "optimizer_g": "rmsprop",
        "optimizer_d": "rmsprop",
        "lr_g": 0.00686789393276335,
        "lr_d": 0.007644552632755601,
        "beta1": 0.421756000516903,
        "beta2": 0.928865261446757,
        "n_critic": 3,
        "extras": {},
    },
    "wgan-gp": {
        "optimizer_g": "rmsprop",
        "optimizer_d": "rmsprop",
        "lr_g": 0.000558201428231988,
        "lr_d": 0.0006898039301187544,
        "beta1": 0.7817069999442366,
        "beta2": 0.9131542443536048,
        "n_critic": 1,
        "extras": {"lambda": 14.908584118915906},
    },
    "lsgan": {
        "optimizer_g": "adam",
        "optimizer_d": "adam",
        "lr_g": 0.002521640091703403,
        "lr_d": 0.0026205959716123065,
        "beta1": 0.5109102581805597,
        "beta2": 0.9242215124191859,
        "n_critic": 1,
        "extras": {"a": 0.0, "b": 1.0, "c": 1.0},
    },
    "hinge": {
        "optimizer_g": "rmsprop",
        "optimizer_d": "rmsprop",
        "lr_g": 0.001002077147219851,
        "lr_d": 0.005631283490599323,
        "beta1": 0.8107268700411002,
        "beta2": 0.9097640914990027,
        "n_critic": 3,
        "extras": {},
    },
}

# the class attributes of the tuned pair (ganbench.models.PairDefaults)
TUNED_SETUP = {"tuned_hyperparams": BEST, "tuned_by": STUDY, "tuned_step_unit": STEP_UNIT}
