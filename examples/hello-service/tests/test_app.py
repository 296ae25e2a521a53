from hello_service.app import app, greet


def call(path: str, query: str = "") -> tuple[str, dict]:
    seen = {}

    def start_response(status, headers):
        seen["status"] = status

    import json

    body = b"".join(app({"PATH_INFO": path, "QUERY_STRING": query}, start_response))
    return seen["status"], json.loads(body)


def test_greet_names_the_person():
    assert greet("Ada") == "Hello, Ada!"


def test_greet_empty_name_greets_the_world():
    assert greet("  ") == "Hello, world!"


def test_greet_route():
    status, payload = call("/greet", "name=Ada")
    assert status == "200 OK"
    assert payload == {"message": "Hello, Ada!"}


def test_unknown_route_is_404():
    status, _ = call("/nope")
    assert status.startswith("404")
