"""The trainer's Kafka-free core: which records enter the matrix, and what that asks of the shell.

``agents/trainer.py`` reads the topics and performs the :class:`Effects`;
``agents/export.py`` runs the same rules over one viewer's records.
"""

from pipeline.trainer.admission import Admission, Unapplied
from pipeline.trainer.effects import READ_FIRST, Dropped, Effects, Kind, Rejected, TopicRecord

__all__ = ["READ_FIRST", "Admission", "Dropped", "Effects", "Kind", "Rejected", "TopicRecord", "Unapplied"]
