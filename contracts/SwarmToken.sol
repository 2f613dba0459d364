// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";

/**
 * @title SwarmToken
 * @notice The ERC-20 reward token of a swarm. Tokens come into existence only when the
 * swarm contract credits a settled epoch's payouts, and only the swarm burns, its own
 * tokens, when a suspension forfeits more than the epoch credits (what it forfeits is paid
 * again from later budgets), so the total supply is always exactly what the swarm has paid
 * out or holds for outstanding credits.
 * @dev NOTE: threat assumptions.
 * - Only holders of MINTER_ROLE can mint; the deployment grants it to the swarm contract
 *   alone. The default admin (who can grant and revoke MINTER_ROLE) changes hands only
 *   through OpenZeppelin's two-step, delayed transfer, so a mistyped or hijacked handover
 *   can be cancelled before it takes effect.
 * - The optional hard cap (0 = uncapped) is enforced on every mint through `_update`, the
 *   single hook ERC20 routes mint, burn and transfer through.
 */
contract SwarmToken is ERC20, ERC20Permit, AccessControlDefaultAdminRules {
    /// @notice Role allowed to mint; held by the swarm contract.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice Maximum total supply in wei; 0 means no cap.
    uint256 public immutable cap;

    /**
     * @notice A mint would push the total supply over the cap.
     * @param supplyAfter Total supply the mint would have produced.
     * @param cap The configured hard cap.
     */
    error SwarmTokenCapExceeded(uint256 supplyAfter, uint256 cap);

    /**
     * @param name_ ERC-20 name.
     * @param symbol_ ERC-20 symbol.
     * @param admin Initial default admin (grants MINTER_ROLE to the swarm contract).
     * @param adminDelay Seconds a default-admin handover must wait before it can be accepted.
     * @param cap_ Hard cap on total supply in wei, 0 for none.
     */
    constructor(string memory name_, string memory symbol_, address admin, uint48 adminDelay, uint256 cap_)
        ERC20(name_, symbol_)
        ERC20Permit(name_)
        AccessControlDefaultAdminRules(adminDelay, admin)
    {
        cap = cap_;
    }

    /**
     * @notice Mint `amount` wei to `to`.
     * @dev Only MINTER_ROLE; reverts with SwarmTokenCapExceeded past the cap.
     */
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /**
     * @notice Burn `amount` wei of the caller's own tokens.
     * @dev Only MINTER_ROLE (the swarm, burning a forfeited balance it holds): a holder's
     * burn would break the supply identity the audit checks and free room under the cap.
     */
    function burn(uint256 amount) external onlyRole(MINTER_ROLE) {
        _burn(msg.sender, amount);
    }

    /// @notice How many more wei can be minted before the cap; type(uint256).max if uncapped.
    function mintable() external view returns (uint256) {
        if (cap == 0) return type(uint256).max;
        // Cannot underflow: _update keeps totalSupply() <= cap.
        unchecked {
            return cap - totalSupply();
        }
    }

    /// @dev Enforces the cap on mints; transfers and burns pass through unchanged.
    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from == address(0) && cap != 0 && totalSupply() > cap) {
            revert SwarmTokenCapExceeded(totalSupply(), cap);
        }
    }
}
