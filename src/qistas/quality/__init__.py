"""Truth inference and agreement for crowd answers: pure numpy and scipy.

Classification answers are three equal-length integer arrays ``tasks``, ``workers``,
``labels``; estimators follow scikit-learn conventions (parameters in ``__init__``,
``fit`` returns self, fitted attributes end in ``_``). Nothing here touches a database.
"""

from ._base import BaseEstimator, best_label, clone
from ._validation import ConvergenceWarning
from .agreement import (
    answers_to_reliability_data,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    rating_table,
)
from .boxes import BoxAggregator, boxes_match
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
from .label_errors import LabelErrorScorer, disagreement_scores
from .mace import MACE
from .multilabel import MultiLabel, MultiLabelAggregator
from .online import WorkerModel, posterior_for_task
from .pairwise import BradleyTerry, CrowdBradleyTerry, PairwiseAggregator
from .ranking import Borda, RankingAggregator, borda_scores, kendall_tau
from .ratings import RatingAggregator, RatingConsensus
from .redundancy import Decision, decide
from .selection import AutoClassifier
from .simulate import (
    SimulatedAnswers,
    SimulatedMultiLabel,
    SimulatedRankings,
    simulate_classification,
    simulate_multilabel,
    simulate_pairwise,
    simulate_rankings,
    simulate_ratings,
)
from .spans import SpanAggregator
from .text import TextAggregator

__all__ = [
    "DEFAULT_CLASSIFIER",
    "GLAD",
    "MACE",
    "LabelErrorScorer",
    "AutoClassifier",
    "BaseEstimator",
    "BoxAggregator",
    "Borda",
    "BradleyTerry",
    "Consensus",
    "ConvergenceWarning",
    "CrowdBradleyTerry",
    "DawidSkene",
    "Decision",
    "MajorityVote",
    "MultiLabel",
    "MultiLabelAggregator",
    "OneCoinDawidSkene",
    "PairwiseAggregator",
    "RankingAggregator",
    "RatingAggregator",
    "RatingConsensus",
    "SimulatedAnswers",
    "SimulatedMultiLabel",
    "SimulatedRankings",
    "SpanAggregator",
    "TextAggregator",
    "WeightedMajorityVote",
    "WorkerModel",
    "answers_to_reliability_data",
    "best_label",
    "borda_scores",
    "box_consensus",
    "box_iou",
    "boxes_match",
    "clone",
    "cohen_kappa",
    "decide",
    "default_classifier",
    "disagreement_scores",
    "fleiss_kappa",
    "kendall_tau",
    "krippendorff_alpha",
    "majority_vote",
    "posterior_for_task",
    "rating_table",
    "simulate_classification",
    "simulate_multilabel",
    "simulate_pairwise",
    "simulate_rankings",
    "simulate_ratings",
    "span_consensus",
    "span_overlap",
]
