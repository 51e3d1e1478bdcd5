"""CPF and CNPJ check digits (brazil-rules.md §5), the alphanumeric CNPJ included."""
import pytest

from services.common.documents import document_key, normalize_document


@pytest.mark.parametrize("raw, punctuated", [
    ("111.444.777-35", "111.444.777-35"),
    ("52998224725", "529.982.247-25"),
    ("11.444.777/0001-61", "11.444.777/0001-61"),
    # From July 2026 a CNPJ's first 12 characters may be letters (each counts as ASCII − 48).
    ("12.ABC.345/01DE-35", "12.ABC.345/01DE-35"),
    ("12abc34501de35", "12.ABC.345/01DE-35"),
])
def test_a_valid_cpf_or_cnpj_is_kept_in_its_punctuation(raw, punctuated):
    assert normalize_document(raw) == punctuated


@pytest.mark.parametrize("raw", [
    "111.444.777-36", "111.111.111-11", "11.444.777/0001-62", "12.ABC.345/01DE-36", "12.ABC.345/01DE-3A",
    "1234567890", "", None, "abc",
])
def test_anything_else_is_refused(raw):
    with pytest.raises(ValueError):
        document_key(raw)
