"""What the shop's views and tasks write, so the tests can see what ran where."""

from django.db import models


class Order(models.Model):
    name = models.CharField(max_length=100)
    processed = models.BooleanField(default=False)


class Seen(models.Model):
    """One row per thing a worker saw: a signal, a task context."""

    result_id = models.CharField(max_length=64)
    what = models.CharField(max_length=100)
    value = models.CharField(max_length=200, blank=True)
