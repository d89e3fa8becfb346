"""Jinja2 templates of the HTML report, installed as rdsaudit.templates."""
