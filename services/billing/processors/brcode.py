"""Pix copy-paste codes (BR Code): EMV merchant-presented TLV fields closed by a
CRC16-CCITT. Pure functions, no processor state.

Each field is id (2 digits) · length (2 digits) · value; the last one, id 63, holds
the CRC of everything before it including its own "6304".
"""
import unicodedata

PIX_GUI = "br.gov.bcb.pix"
CURRENCY_BRL = "986"
CRC_FIELD = "6304"
MAX_NAME, MAX_CITY, MAX_TXID = 25, 15, 25


def crc16_ccitt(text):
    """CRC-16/CCITT-FALSE (poly 0x1021, initial 0xFFFF) as 4 upper-case hex digits."""
    crc = 0xFFFF
    for byte in text.encode("utf-8"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def tlv(field_id, value):
    if len(value) > 99:
        raise ValueError(f"Field {field_id} is longer than 99 characters.")
    return f"{field_id}{len(value):02d}{value}"


def plain_ascii(text, max_length):
    """Names and cities travel without accents, upper-case, within their limit."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return ascii_text.upper().strip()[:max_length]


def pix_code(key, amount_cents, merchant_name, merchant_city, txid):
    """A single-use BR Code for `amount_cents` to the pix `key`, identified by `txid`."""
    if not (txid.isalnum() and len(txid) <= MAX_TXID):
        raise ValueError("A txid has up to 25 letters and digits.")
    payload = "".join([
        tlv("00", "01"),
        tlv("01", "12"),  # initiation method: this code is meant to be paid once
        tlv("26", tlv("00", PIX_GUI) + tlv("01", key)),
        tlv("52", "0000"),
        tlv("53", CURRENCY_BRL),
        tlv("54", f"{amount_cents // 100}.{amount_cents % 100:02d}"),
        tlv("58", "BR"),
        tlv("59", plain_ascii(merchant_name, MAX_NAME)),
        tlv("60", plain_ascii(merchant_city, MAX_CITY)),
        tlv("62", tlv("05", txid)),
        CRC_FIELD,
    ])
    return payload + crc16_ccitt(payload)


def parse_tlv(text):
    """The fields of a TLV string, id → value, in order; ValueError if malformed."""
    fields = {}
    position = 0
    while position < len(text):
        field_id, length = text[position:position + 2], text[position + 2:position + 4]
        if not (field_id.isdigit() and length.isdigit()):
            raise ValueError(f"Malformed field at {position}.")
        value = text[position + 4:position + 4 + int(length)]
        if len(value) != int(length):
            raise ValueError(f"Field {field_id} is cut short.")
        fields[field_id] = value
        position += 4 + int(length)
    return fields


def crc_is_valid(code):
    return len(code) > 8 and code[-8:-4] == CRC_FIELD and crc16_ccitt(code[:-4]) == code[-4:]


def parse_pix_code(code):
    """The fields of a BR Code, with its merchant account and additional data opened;
    ValueError if the CRC or the structure is wrong."""
    if not crc_is_valid(code):
        raise ValueError("The CRC does not match.")
    fields = parse_tlv(code)
    if fields.get("00") != "01" or "26" not in fields or "63" not in fields:
        raise ValueError("Not a BR Code.")
    fields["26"] = parse_tlv(fields["26"])
    if fields["26"].get("00") != PIX_GUI:
        raise ValueError("Not a pix code.")
    if "62" in fields:
        fields["62"] = parse_tlv(fields["62"])
    return fields
