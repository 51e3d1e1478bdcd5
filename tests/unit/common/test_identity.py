"""The identity rules every service shares: one e-mail form, one owner filter."""
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.provisional import domains

from services.common.identity import InvalidEmail, normalize_email, owner_filters


class TestEmail:
    @pytest.mark.parametrize("raw, expected", [
        ("Ana@Example.com", "ana@example.com"),
        ("  joao.silva+portal@loja.com.br \n", "joao.silva+portal@loja.com.br"),
        ("o'brien@sub-domain.example.org", "o'brien@sub-domain.example.org"),
        ("x@xn--caf-dma.com", "x@xn--caf-dma.com"),
    ])
    def test_normalised(self, raw, expected):
        assert normalize_email(raw) == expected

    @pytest.mark.parametrize("raw", [
        None, 42, "", "   ", "ana", "ana@", "@example.com", "ana@example", "ana@@example.com",
        "ana@exa mple.com", "ana maria@example.com", ".ana@example.com", "ana.@example.com",
        "ana..maria@example.com", "ana@-example.com", "ana@example-.com", "ana@example..com",
        "ana@example.c", "ana@example.123", "ana@exam_ple.com", "ana<script>@example.com",
        "ana@example.com\nBcc: x@example.com", "a" * 65 + "@example.com",
        "ana@" + "a" * 250 + ".com",
    ])
    def test_malformed_rejected(self, raw):
        with pytest.raises(InvalidEmail):
            normalize_email(raw)

    @given(
        st.emails(domains=domains(max_length=100)).filter(lambda email: len(email) <= 254),
        st.sampled_from(["", " ", "\t", "\n "]),
        st.randoms(),
    )
    def test_valid_addresses_accepted_in_one_normal_form(self, email, padding, random):
        typed = padding + "".join(random.choice([c.lower(), c.upper()]) for c in email) + padding
        normal = normalize_email(typed)
        assert normal == email.lower()
        assert normalize_email(normal) == normal


class TestOwnerFilters:
    def test_an_unscoped_session_sees_every_merchant_of_its_email(self):
        filters = owner_filters({"email": " Ana@Example.COM ", "merchant_id": None, "session_id": "s"})
        assert filters == {"email": "ana@example.com"}

    def test_a_merchant_scoped_session_sees_that_merchant_only(self):
        filters = owner_filters({"email": "ana@example.com", "merchant_id": "acme-cursos"})
        assert filters == {"email": "ana@example.com", "merchant_id": "acme-cursos"}

    @pytest.mark.parametrize("identity", [
        {}, {"email": ""}, {"email": "   "}, {"email": None}, {"merchant_id": "beta-software"},
    ])
    def test_no_email_no_filter(self, identity):
        with pytest.raises(ValueError):
            owner_filters(identity)
