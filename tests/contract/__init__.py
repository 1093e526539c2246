import pytest

# Plain asserts in the shared contract module get pytest's detailed failure messages.
pytest.register_assert_rewrite("tests.contract.store_contract")
