"""JSON log lines and the job ids they carry."""


def test_log_lines_of_a_job_carry_its_ids():
    import io
    import json
    import logging

    from bot.logs import JsonFormatter, job_context

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("forgebot.test.ids")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    with job_context(job=7, attempt=3):
        logger.info("inside", extra={"stage": "verify"})
    logger.info("outside")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inside["job"], inside["attempt"], inside["stage"]) == (7, 3, "verify")
    assert "job" not in outside
