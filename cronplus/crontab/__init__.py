"""The crontab language: crontab text -> a frozen model.Crontab, and what its schedules mean.
Pure but for reading the file (parser.load_crontab); nothing here runs, stores or sends.

- parser: the whole file, every error as FILE:LINE:COL (entry points: parse_crontab,
  load_crontab, parse_schedule); textchecks: whole-file checks first; envlines: VAR=value lines;
  fields: the five time fields; annotations: `# cronplus:` keys; jobnames: default names;
  deps: `after=` graph checks and trigger-rule verdicts; lint: warnings; tzcheck: zone names;
  mailto: the MAILTO address check; schedule: next_fire, cron-exact fire times; timeline:
  looking back (previous_fire, the day rule on a date, DST wall times).

May import: foundation.
"""
