"""The SDK's public surface is exactly what `sluice.client.__all__` lists."""

import sluice.client


def test_public_names() -> None:
    public = {name for name in dir(sluice.client) if not name.startswith("_")}
    assert public == set(sluice.client.__all__)
    assert {"SluiceClient", "AsyncSluiceClient", "ChannelEvent", "RequestFailed", "verify_webhook"} <= public
