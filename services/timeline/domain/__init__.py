"""The timeline's domain: tweets, their authors and pages of them, with no Flask, no driver
and no HTTP. `model` holds the values, `commands` what callers ask for, `events` what the
timeline announces, `errors` the plain exceptions its rules raise."""
