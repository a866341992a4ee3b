//! Recognising ECR registry hosts (`ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]`).

/// The parts of an ECR registry host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    /// 12-digit AWS account id.
    pub account: String,
    /// AWS region (`us-east-1`).
    pub region: String,
    /// The FIPS endpoint form (`dkr.ecr-fips`).
    pub fips: bool,
}

/// Parses an ECR host (a port, if any, is ignored); `None` for any other registry.
pub fn parse(registry: &str) -> Option<EcrHost> {
    let host = registry.split(':').next()?;
    let rest = host.strip_suffix(".amazonaws.com").or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let mut parts = rest.split('.');
    let account = parts.next()?;
    let dkr = parts.next()?;
    let ecr = parts.next()?;
    let region = parts.next()?;
    if parts.next().is_some() || dkr != "dkr" || !(ecr == "ecr" || ecr == "ecr-fips") {
        return None;
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return None;
    }
    Some(EcrHost { account: account.into(), region: region.into(), fips: ecr == "ecr-fips" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let e = parse("123456789012.dkr.ecr.us-east-1.amazonaws.com").unwrap_or_else(|| panic!("plain"));
        assert_eq!((e.account.as_str(), e.region.as_str(), e.fips), ("123456789012", "us-east-1", false));
        let e = parse("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").unwrap_or_else(|| panic!("fips"));
        assert_eq!((e.region.as_str(), e.fips), ("us-gov-west-1", true));
        let e = parse("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn:443").unwrap_or_else(|| panic!("china"));
        assert_eq!(e.region, "cn-north-1");
        assert!(parse("docker.io").is_none());
        assert!(parse("12345.dkr.ecr.us-east-1.amazonaws.com").is_none());
        assert!(parse("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.com").is_none());
        assert!(parse("public.ecr.aws").is_none());
    }
}
