"""A small Django project whose tasks run on jobmaster (Django's task framework, `django.tasks`).

Run it from this directory (`pip install 'jobmaster[django]'` first):

    python manage.py migrate
    python manage.py jobmaster_worker &
    python manage.py runserver 8000 --noreload
    curl -X POST -d name=Ada http://127.0.0.1:8000/greet/      # {"result_id": "..."}
    curl http://127.0.0.1:8000/results/<result_id>/            # {"status": "SUCCESSFUL", "return_value": ...}

The worker may also be started as `DJANGO_SETTINGS_MODULE=shop_site.settings jobmaster worker --django`.
Django and jobmaster keep SQLite files here (or in $DJANGO_SHOP_DATA); see shop_site/settings.py for
PostgreSQL, where an enqueue inside `transaction.atomic()` joins the transaction.
"""

import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
