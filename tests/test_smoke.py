from quart.testing import QuartClient

from .conftest import Auth


async def test_sign_up_then_home(client: QuartClient, auth: Auth) -> None:
    response = await auth.sign_up()
    assert response.status_code == 303, await response.get_data(as_text=True)
    assert response.headers["Location"] == "/home"
    home = await client.get("/home")
    text = await home.get_data(as_text=True)
    assert home.status_code == 200, text
    assert "ada@example.com" in text
