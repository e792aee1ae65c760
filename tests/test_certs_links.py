"""One link of a chain (``meshca.certs.signed_by`` / ``verify_path``), made cheaper without
changing any answer (issue 13):

- a certificate whose subject is not the child's issuer Name is refused by name, with no
  signature check (``verify_directly_issued_by`` refuses it so too, ValueError);
- every certificate that does name the issuer has its signature verified on every call: a
  forged or tampered link is refused every time, even right after the genuine one passed;
- the answers are cryptography's own: ``Certificate.verify_directly_issued_by`` (with the
  issuer-name test in front of it) is the reference for every ordered pair of a zoo of RSA,
  EC, Ed25519 and RSA-PSS certificates, twins and tampered copies.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from meshca import certs

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _cert(subject: x509.Name, issuer: x509.Name, public_key, signing_key, *, algorithm=hashes.SHA256(), rsa_padding=None):
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(EPOCH)
        .not_valid_after(EPOCH + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if rsa_padding is not None:
        return builder.sign(signing_key, algorithm, rsa_padding=rsa_padding)
    return builder.sign(signing_key, algorithm)


def _name(cn: str, *, printable: bool = False) -> x509.Name:
    kind = x509.name._ASN1Type.PrintableString if printable else x509.name._ASN1Type.UTF8String
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn, _type=kind)])


def _tampered(cert: x509.Certificate) -> x509.Certificate:
    """The same certificate with the last byte of its signature flipped."""
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    return x509.load_der_x509_certificate(bytes(der))


def _outer_algorithm_swapped(cert: x509.Certificate) -> x509.Certificate:
    """ecdsa-with-SHA256 in the outer signatureAlgorithm only, made ecdsa-with-SHA384: the
    TBS and outer algorithms differ (verify_directly_issued_by refuses that)."""
    oid = bytes.fromhex("06082a8648ce3d040302")
    der = cert.public_bytes(serialization.Encoding.DER)
    at = der.rindex(oid)
    assert der.index(oid) < at  # the TBS one comes first
    return x509.load_der_x509_certificate(der[:at] + oid[:-1] + b"\x03" + der[at + len(oid):])


def _reference(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """cryptography's answer: the issuer Name, then ``verify_directly_issued_by``."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


@pytest.fixture(scope="module")
def zoo():
    rsa_root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_root_key = ec.generate_private_key(ec.SECP256R1())
    ec_twin_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    rsa_root = _cert(_name("rsa root"), _name("rsa root"), rsa_root_key.public_key(), rsa_root_key)
    ec_root = _cert(_name("ec root"), _name("ec root"), ec_root_key.public_key(), ec_root_key)
    ec_twin = _cert(_name("ec root"), _name("ec root"), ec_twin_key.public_key(), ec_twin_key)  # same name, other key
    rsa_named_ec = _cert(_name("ec root"), _name("rsa root"), rsa_root_key.public_key(), rsa_root_key)  # an RSA key under the EC root's name
    printable = _cert(_name("ec root", printable=True), _name("ec root", printable=True), ec_root_key.public_key(), ec_root_key)  # equal Name, other DER
    ed_root = _cert(_name("ed root"), _name("ed root"), ed_key.public_key(), ed_key, algorithm=None)
    by_rsa = _cert(_name("leaf a"), _name("rsa root"), leaf_key.public_key(), rsa_root_key)
    by_rsa_pss = _cert(
        _name("leaf b"), _name("rsa root"), leaf_key.public_key(), rsa_root_key,
        rsa_padding=padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
    )
    by_ec = _cert(_name("leaf c"), _name("ec root"), leaf_key.public_key(), ec_root_key)
    by_ec_384 = _cert(_name("leaf d"), _name("ec root"), leaf_key.public_key(), ec_root_key, algorithm=hashes.SHA384())
    by_twin = _cert(_name("leaf e"), _name("ec root"), leaf_key.public_key(), ec_twin_key)
    by_ed = _cert(_name("leaf f"), _name("ed root"), leaf_key.public_key(), ed_key, algorithm=None)
    by_printable = _cert(_name("leaf g"), _name("ec root", printable=True), leaf_key.public_key(), ec_root_key)
    certs_ = {
        "rsa_root": rsa_root, "ec_root": ec_root, "ec_twin": ec_twin, "rsa_named_ec": rsa_named_ec,
        "printable": printable, "ed_root": ed_root, "by_rsa": by_rsa, "by_rsa_pss": by_rsa_pss,
        "by_ec": by_ec, "by_ec_384": by_ec_384, "by_twin": by_twin, "by_ed": by_ed, "by_printable": by_printable,
    }
    for name in ("by_rsa", "by_rsa_pss", "by_ec", "by_ed", "ec_root"):
        certs_[f"tampered_{name}"] = _tampered(certs_[name])
    certs_["swapped_by_ec"] = _outer_algorithm_swapped(by_ec)
    return certs_


def test_every_pair_answers_as_cryptography_does(zoo):
    expected_true = set()
    for a_name, a in zoo.items():
        for b_name, b in zoo.items():
            want = _reference(a, b)
            if want:
                expected_true.add((a_name, b_name))
            for _ in range(2):  # the second call uses what the first one parsed
                assert certs.signed_by(a, b) is want, (a_name, b_name)
    # The zoo is not vacuous: each kind of link is in it, and each forgery is refused.
    for good in [("by_rsa", "rsa_root"), ("by_rsa_pss", "rsa_root"), ("by_ec", "ec_root"), ("by_ec_384", "ec_root"),
                 ("by_twin", "ec_twin"), ("by_ed", "ed_root"), ("by_printable", "printable"), ("ec_root", "ec_root")]:
        assert good in expected_true, good
    for bad in [("by_ec", "ec_twin"), ("by_twin", "ec_root"), ("by_ec", "rsa_named_ec"), ("by_ec", "printable"),
                ("by_printable", "ec_root"), ("tampered_by_ec", "ec_root"), ("tampered_by_rsa", "rsa_root"),
                ("tampered_by_rsa_pss", "rsa_root"), ("tampered_by_ed", "ed_root"), ("tampered_ec_root", "ec_root"),
                ("swapped_by_ec", "ec_root")]:
        assert bad not in expected_true, bad


def test_a_non_candidate_is_refused_without_a_signature_check(zoo, monkeypatch):
    calls = []
    real = certs._verified
    monkeypatch.setattr(certs, "_verified", lambda c, i: calls.append((c, i)) or real(c, i))
    strangers = [zoo["rsa_root"], zoo["ed_root"], zoo["by_rsa"], zoo["by_ed"]]
    assert certs.signed_by(zoo["by_ec"], zoo["rsa_root"]) is False
    path = certs.verify_path(zoo["by_ec"], strangers, [zoo["rsa_root"], zoo["ed_root"], zoo["ec_root"]])
    assert path == [zoo["by_ec"], zoo["ec_root"]]
    assert calls == [(zoo["by_ec"], zoo["ec_root"])]  # only the one certificate that names the issuer


def test_a_candidate_with_a_bad_signature_is_refused_every_time(zoo, monkeypatch):
    calls = []
    real = certs._verified
    monkeypatch.setattr(certs, "_verified", lambda c, i: calls.append((c, i)) or real(c, i))
    good, forged = zoo["by_ec"], zoo["tampered_by_ec"]
    for _ in range(3):
        assert certs.verify_path(good, [], [zoo["ec_root"]]) == [good, zoo["ec_root"]]
        assert certs.verify_path(forged, [], [zoo["ec_root"]]) is None
        # the twin names the same issuer: it is a candidate, checked, and refused, every time
        assert certs.verify_path(good, [], [zoo["ec_twin"]]) is None
        assert certs.verify_path(good, [zoo["ec_twin"]], [zoo["ec_root"]]) == [good, zoo["ec_root"]]
    assert calls == [(good, zoo["ec_root"]), (forged, zoo["ec_root"]), (good, zoo["ec_twin"]), (good, zoo["ec_root"])] * 3


def test_both_ways_of_checking_a_signature_are_in_the_zoo(zoo):
    """ECDSA and RSA PKCS#1 v1.5 links reuse the issuer's loaded key; RSA-PSS and Ed25519 go to
    ``verify_directly_issued_by``: the pair test above covers both."""
    assert certs._signature_facts(zoo["by_ec"]) is not None and certs._signature_facts(zoo["by_rsa"]) is not None
    assert certs._signature_facts(zoo["by_rsa_pss"]) is None and certs._signature_facts(zoo["by_ed"]) is None
    assert certs._signature_facts(zoo["swapped_by_ec"]) is None  # outer and TBS algorithms differ
