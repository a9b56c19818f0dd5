"""Load the accelerator catalog (docs/model.md, "Accelerator catalogs"; dense BF16 per GPU).

Figures are frozen here on purpose: a migration must give the same rows forever. Where the
source gives a range, the value chosen is noted. reference_mfu: H100 430/989 TFLOP/s (Llama 3,
Table 4, 8,192 GPUs); A100 0.552 (MegaScale, 12,288 A100s); others are estimates in line with
those anchors. jitter_cv 0.02 (the 2 % anchor of the straggler figures). mtbf_hours per GPU:
Llama 3 saw 419 interruptions in 54 days on 16,384 H100s, i.e. about 50,000 GPU-hours each; older
and brand-new generations are given less.
"""

from decimal import Decimal

from django.db import migrations

CATALOG = [
    # slug, name, generation, peak TFLOP/s, HBM GB, HBM TB/s, scale-up GB/s, scale-out Gbit/s,
    # TDP W, reference MFU, jitter cv, MTBF h, $/GPU-h
    ("v100", "V100 SXM2 32GB", "volta", 125, 32, 0.9, 300, 100, 300, 0.35, 0.03, 30000, "1.00"),
    ("a100", "A100 SXM 80GB", "ampere", 312, 80, 2.0, 600, 200, 400, 0.552, 0.02, 50000, "1.50"),
    ("h100", "H100 SXM", "hopper", 989, 80, 3.35, 900, 400, 700, 0.435, 0.02, 50000, "2.35"),
    ("h200", "H200 SXM", "hopper", 989, 141, 4.8, 900, 400, 700, 0.45, 0.02, 50000, "3.50"),
    ("b200", "B200", "blackwell", 2250, 180, 8.0, 1800, 400, 1000, 0.40, 0.02, 40000, "4.00"),
    # GB200: 2,250–2,500 TFLOP/s and 400–800 Gbit/s in the sources; the NVL72 figures are taken.
    ("gb200", "GB200 NVL72", "blackwell", 2500, 186, 8.0, 1800, 800, 1200, 0.40, 0.02, 40000, "4.50"),
]


def load(apps, schema_editor):
    AcceleratorModel = apps.get_model("clusters", "AcceleratorModel")
    for row in CATALOG:
        slug, name, gen, peak, hbm, hbm_bw, up, out, tdp, mfu, cv, mtbf, price = row
        AcceleratorModel.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "generation": gen,
                "peak_tflops": peak,
                "hbm_gb": hbm,
                "hbm_tbps": hbm_bw,
                "scaleup_gbytes_per_s": up,
                "scaleout_gbps": out,
                "tdp_w": tdp,
                "reference_mfu": mfu,
                "jitter_cv": cv,
                "mtbf_hours": mtbf,
                "market_price_per_gpu_hour": Decimal(price),
            },
        )


def unload(apps, schema_editor):
    AcceleratorModel = apps.get_model("clusters", "AcceleratorModel")
    AcceleratorModel.objects.filter(slug__in=[row[0] for row in CATALOG]).delete()


class Migration(migrations.Migration):
    dependencies = [("clusters", "0001_inventory")]
    operations = [migrations.RunPython(load, unload)]
