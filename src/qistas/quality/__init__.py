"""Truth inference and agreement for crowd answers: pure numpy and scipy.

Classification answers are three equal-length integer arrays ``tasks``, ``workers``,
``labels``; estimators follow scikit-learn conventions (parameters in ``__init__``,
``fit`` returns self, fitted attributes end in ``_``). Nothing here touches a database.
"""

from ._base import BaseEstimator, clone
from ._validation import ConvergenceWarning
from .agreement import (
    answers_to_reliability_data,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    rating_table,
)
from .classification import (
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    WeightedMajorityVote,
    majority_vote,
)
from .consensus import Consensus, box_consensus, box_iou, span_consensus, span_overlap
from .defaults import DEFAULT_CLASSIFIER, default_classifier
from .glad import GLAD
from .mace import MACE
from .multilabel import MultiLabel
from .online import WorkerModel, posterior_for_task
from .pairwise import BradleyTerry, CrowdBradleyTerry
from .ranking import Borda, borda_scores
from .ratings import RatingAggregator
from .redundancy import Decision, decide
from .simulate import (
    SimulatedAnswers,
    simulate_classification,
    simulate_pairwise,
    simulate_ratings,
)
from .text import TextAggregator

__all__ = [
    "DEFAULT_CLASSIFIER",
    "GLAD",
    "MACE",
    "BaseEstimator",
    "Borda",
    "BradleyTerry",
    "Consensus",
    "ConvergenceWarning",
    "CrowdBradleyTerry",
    "DawidSkene",
    "Decision",
    "MajorityVote",
    "MultiLabel",
    "OneCoinDawidSkene",
    "RatingAggregator",
    "SimulatedAnswers",
    "TextAggregator",
    "WeightedMajorityVote",
    "WorkerModel",
    "answers_to_reliability_data",
    "borda_scores",
    "box_consensus",
    "box_iou",
    "clone",
    "cohen_kappa",
    "decide",
    "default_classifier",
    "fleiss_kappa",
    "krippendorff_alpha",
    "majority_vote",
    "posterior_for_task",
    "rating_table",
    "simulate_classification",
    "simulate_pairwise",
    "simulate_ratings",
    "span_consensus",
    "span_overlap",
]
