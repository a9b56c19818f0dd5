"""One date style for the admin and every template's `date` filter without an argument
(common/display.py): days as 2026-11-03, instants as 2026-11-03 08:00 UTC, with the zone
named. Django looks these up by the language (`FORMAT_MODULE_PATH`)."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i e"
SHORT_DATETIME_FORMAT = "Y-m-d H:i e"
TIME_FORMAT = "H:i"
YEAR_MONTH_FORMAT = "Y-m"
MONTH_DAY_FORMAT = "m-d"
