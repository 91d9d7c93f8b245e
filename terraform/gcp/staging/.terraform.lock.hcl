# This file is maintained automatically by "terraform init".
# Manual edits may be lost in future updates.

provider "registry.terraform.io/hashicorp/google" {
  version     = "4.63.0"
  constraints = "4.63.0"
  hashes = [
    "h1:63KduQv2pIU1AhxQppByUxG3Od/tIFDr53Fr8pb4/UI=",
    "zh:27080a67f69e7b812710da6d6aca0099f2319ce42d882773eaa5968eacb06eac",
    "zh:30ba091dde436afdbea2bf1e5ee1401e2d767517671eb378e94f52c57a63ef8b",
    "zh:32e539cbdde2540a12bc4351a8715ebe82b717891e7f1a6b2027c3ea82c234f5",
    "zh:53c1fd99074c718934a23329033adaa70109c9b6ccc8c032f8b7ad08e175593b",
    "zh:653720fe83b5889de4cb572894e2f9704c463fb0293c943ca201caca53081ce7",
    "zh:689bdd6ad3dd35dde20abf38c52fdcd16fe2f8604a526f5f9c2cad0219fe902c",
    "zh:a74c95639449fb19847d6ac028202c3b29700ccae86944159676ce5e68da12f8",
    "zh:ae3c46342ddfe28c59e46d53304eb4a27b9c72a7903553412c8249071aae0dcd",
    "zh:bbafce4c592d28943dd235ecf47d5bded35964ae946234379b97d049cbcbe521",
    "zh:dbcb5f1c602909341dd86a12cebcc00e6e3be4793fccc75695df5333aff9dc00",
    "zh:ecf81a806e62f284dfae5c0ae9834bc24bb2825c910cbe8b2fa63e28c1ccd24b",
    "zh:f569b65999264a9416862bca5cd2a6177d94ccb0424f3a4ef424428912b9cb3c",
  ]
}
