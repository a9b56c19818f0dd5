"""State enumerations of reclaim decisions."""

from django.db import models


class ReclaimStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCORED = "scored", "Scored"
    APPROVED = "approved", "Approved"
    NOTICE_ISSUED = "notice_issued", "Notice issued"
    EXECUTED = "executed", "Executed"
    REJECTED = "rejected", "Rejected"


class Recommendation(models.TextChoices):
    RECLAIM = "reclaim", "Reclaim"
    KEEP_LEASED = "keep_leased", "Keep leased"
